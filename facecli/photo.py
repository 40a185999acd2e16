"""Photo evidence: is a probe a degraded copy of one of the gallery's photos?

FACECOM's identity protocol matches degraded copies (blur, fog, rain, noise, low light, glare, down-scaling)
of the very photos the gallery holds. Where the face is gone (sun glare paints it white), the photo is still
there around it: hair, outline, clothes, background. A gallery with photo evidence keeps, per photo, a
whole-photo vector from a matcher trained on degraded copies (``identity_facecom.onnx``) and a 64 x 64 grey
thumbnail. A probe's photo vector shortlists the :data:`SHORTLIST` nearest gallery photos; each is then
tested pixel by pixel (:func:`copy_evidence`): the probe's thumbnail, median-filtered and with its saturated
pixels masked out, must correlate locally with the candidate's in gradients and in band-pass detail. A
degraded copy keeps the local structure of its source wherever the degradation left anything; another
photo, even of the same person against the same backdrop, does not.

Measured on FACECOM's training split (200 identities + 300 distractors, 2,737 distorted probes, 1,215
gallery photos): with the source in the gallery the evidence reached :data:`FIRE` for 99.3% of probes
(blurred, low light, noisy, resized 100%, rainy 99.7%, foggy 99.0%, sunny 98.7%); with the source left out
(another photo of the same person and everyone else in the gallery) it never did (highest 0.697). So photo
evidence stays silent when the probe's own photo is not in the gallery, and a stranger cannot raise it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

MAP_SIDE = 64  # thumbnail side in pixels
SHORTLIST = 3  # gallery photos tested per probe (the source is among the photo matcher's 3 nearest for every
# probe of the kinds other than sunny on 2,737 FACECOM probes)
SHORTLIST_FACE_GONE = 16  # ... and for a washed-out face, whose photo is all there is to go on: a person with
# hundreds of near-identical gallery photos needs more (held-out FACECOM sunny top-1 0.975 with 3, 0.996 with 16)
FIRE = 0.72  # copy evidence at or above this says "a degraded copy of this photo" (0.70-0.72: no false fire)
PHOTO_SCORE_AT_FIRE = 0.99  # the similarity photo evidence gives at FIRE, rising linearly to 1 at evidence 1
SATURATED = 250  # grey level from which a probe pixel counts as glare and is left out
MAX_SATURATED_SHARE = 0.02  # a thumbnail pixel is used when less than this share of its area is saturated
BORDER = 3  # thumbnail pixels dropped at each edge (filter borders)
WINDOW = 9  # local correlation window (thumbnail pixels)
MIN_WINDOW_SHARE = 0.6  # a window counts when this share of it is usable
MIN_CANDIDATE_VARIANCE = 4.0  # ... and the candidate has texture there (grey levels squared)
MIN_WINDOWS = 30  # fewer usable windows: no evidence
MIN_USABLE_SHARE = 0.10  # nor when the glare left less than this share of the thumbnail: too few pixels to tell
# photos apart. On 521 held-out sunny probes against 1,405 strangers' photos, below it a stranger's photo reached
# 0.913 (the source 0.80-0.99, 11 probes); above it no stranger's photo passed 0.54


def thumbnail(bgr: np.ndarray) -> np.ndarray:
    """A gallery photo's 64 x 64 grey thumbnail (uint8; area-averaged)."""
    grey = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (MAP_SIDE, MAP_SIDE), interpolation=cv2.INTER_AREA)


def probe_thumbnail(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A probe's thumbnail (grey, 3x3 median against impulse noise, then area-averaged) and the mask of its
    usable pixels (not saturated by glare, away from the border)."""
    grey = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    saturated = (grey >= SATURATED).astype(np.float32)
    thumb = cv2.resize(cv2.medianBlur(grey, 3), (MAP_SIDE, MAP_SIDE), interpolation=cv2.INTER_AREA)
    usable = cv2.resize(saturated, (MAP_SIDE, MAP_SIDE), interpolation=cv2.INTER_AREA) < MAX_SATURATED_SHARE
    usable[:BORDER], usable[-BORDER:], usable[:, :BORDER], usable[:, -BORDER:] = False, False, False, False
    return thumb, usable


def _bands(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal and vertical gradients of a lightly smoothed copy, and a band-pass (difference of Gaussians)."""
    smooth = cv2.GaussianBlur(g, (0, 0), 0.8)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    return gx, gy, smooth - cv2.GaussianBlur(g, (0, 0), 2.5)


def _box(x: np.ndarray) -> np.ndarray:
    return cv2.boxFilter(x, -1, (WINDOW, WINDOW), normalize=False)


def _local_correlation(a: np.ndarray, b: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Mean windowed correlation of the probe band ``a`` (H, W) with each candidate band ``b`` (H, W, K) over
    usable pixels; windows mostly unusable or flat in the candidate are left out. Returns (K,)."""
    m = usable.astype(np.float32)
    n = _box(m)
    n1 = np.maximum(n, 1.0)
    am = a * m
    mean_a = _box(am) / n1
    var_a = _box(am * a) / n1 - mean_a**2
    mk = m[..., None]
    bm = b * mk
    mean_b = _box(bm) / n1[..., None]
    var_b = _box(bm * b) / n1[..., None] - mean_b**2
    cov = _box(bm * a[..., None]) / n1[..., None] - mean_a[..., None] * mean_b
    r = cov / np.sqrt(np.maximum(var_a[..., None] * var_b, 1e-6))
    ok = ((n >= MIN_WINDOW_SHARE * WINDOW * WINDOW) & usable)[..., None] & (var_b > MIN_CANDIDATE_VARIANCE)
    count = ok.sum(axis=(0, 1))
    total = np.where(ok, r, 0.0).sum(axis=(0, 1))
    return np.where(count >= MIN_WINDOWS, total / np.maximum(count, 1), 0.0)


def copy_evidence(probe: np.ndarray, usable: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """How strongly a probe thumbnail (from :func:`probe_thumbnail`) looks like a degraded copy of each
    candidate thumbnail (K, 64, 64): the mean of the local correlations of their gradients and of their
    band-pass detail, in [-1, 1]. At :data:`FIRE` or above the probe is taken for a copy of that photo."""
    k = len(candidates)
    if not k or usable.sum() < MIN_WINDOWS or usable.mean() < MIN_USABLE_SHARE:
        return np.zeros(k, np.float32)
    if k == 1:  # OpenCV drops a single channel: test the one candidate twice
        return copy_evidence(probe, usable, np.concatenate([candidates, candidates]))[:1]
    pg = probe.astype(np.float32)
    cg = np.ascontiguousarray(np.asarray(candidates, np.float32).transpose(1, 2, 0))  # (H, W, K)
    px, py, pd = _bands(pg)
    cx, cy, cd = (c.reshape(MAP_SIDE, MAP_SIDE, k) for c in _bands(cg))
    grad = 0.5 * (_local_correlation(px, cx, usable) + _local_correlation(py, cy, usable))
    return (0.5 * (grad + _local_correlation(pd, cd, usable))).astype(np.float32)


def photo_score(evidence: float | np.ndarray) -> float | np.ndarray:
    """The similarity a fired copy evidence gives its photo's identity: PHOTO_SCORE_AT_FIRE at FIRE, 1 at 1."""
    e = np.clip(evidence, FIRE, 1.0)
    return PHOTO_SCORE_AT_FIRE + (1.0 - PHOTO_SCORE_AT_FIRE) * (e - FIRE) / (1.0 - FIRE)


@dataclass
class PhotoVote:
    """Photo evidence for one probe: the gallery photo row it is a copy of, its identity and the evidence."""

    row: int
    identity: str
    evidence: float

    @property
    def score(self) -> float:
        return float(photo_score(self.evidence))


# ------------------------------------------------------------------ with a photo matcher and a gallery

PHOTO_MODEL_FILE = "identity_facecom.onnx"  # the shipped photo matcher (models/)
FACE_SURE = 0.98  # probes whose best face score reaches this (and whose face is not washed out) skip photo
# evidence: on 3,647 held-out FACECOM-protocol probes none of the 80% above it had a wrong nearest identity


@dataclass
class ProbePhoto:
    """What photo evidence needs of one probe image: the photo matcher's input crop and the thumbnail."""

    crop: np.ndarray  # (S, S, 3) BGR uint8, the photo matcher's view
    thumb: np.ndarray
    usable: np.ndarray


class PhotoEvidence:
    """Photo evidence of probes against a gallery's :class:`~facecli.gallery.PhotoSet`, chunk by chunk.

    ``inputs`` is the pipeline's ``extra`` hook (run on each decoded probe, before restoration); ``votes``
    runs after each chunk of face embeddings and returns the photo votes of the chunk's probes that need them
    (the face not sure: best face score below :data:`FACE_SURE`, or the face washed out).
    """

    def __init__(self, model: Any, photos: Any, face_scores: Any, gallery: Any) -> None:
        self.model, self.photos, self.face_scores, self.gallery = model, photos, face_scores, gallery
        self.spec = model.preprocessing.replace(detect="none", restore="none")

    def inputs(self, bgr: np.ndarray) -> ProbePhoto:
        from facecli.face.preprocess import crop_face

        thumb, usable = probe_thumbnail(bgr)
        return ProbePhoto(crop_face(bgr, self.spec), thumb, usable)

    def votes(self, crops: list[Any], outputs: np.ndarray) -> dict[int, PhotoVote]:
        """Photo votes (input index -> vote) of the chunk's probes that need one and whose evidence fires."""
        from facecli.face.preprocess import to_tensor

        firsts = [(c, v) for c, v in zip(crops, outputs, strict=True) if c.extra is not None]
        if not firsts:
            return {}
        _, cos = self.gallery.search(np.stack([v for _, v in firsts]), 1)
        best = self.face_scores(cos[:, 0])
        need = [(c, b) for (c, _), b in zip(firsts, best, strict=True) if needs_photo(b, c.face_status)]
        if not need:
            return {}
        vectors = self.model.run(to_tensor(np.stack([c.extra.crop for c, _ in need]), self.spec))
        found = vote(self.photos, vectors, [c.extra.thumb for c, _ in need], [c.extra.usable for c, _ in need],
                     [c.face_status == "fallback" for c, _ in need])
        return {c.index: v for (c, _), v in zip(need, found, strict=True) if v is not None}


def vote(photos: Any, vectors: np.ndarray, thumbs: list[np.ndarray], usables: list[np.ndarray],
         face_gone: list[bool] | None = None) -> list[PhotoVote | None]:
    """Photo votes of probes (their photo matcher vectors, thumbnails and usable masks) against the gallery
    ``photos``: the shortlisted photo (:data:`SHORTLIST`, or :data:`SHORTLIST_FACE_GONE` where ``face_gone``)
    whose copy evidence is highest, when it reaches :data:`FIRE`."""
    if not len(vectors) or not len(photos.rows):
        return [None] * len(vectors)
    gone = face_gone if face_gone is not None else [False] * len(vectors)
    near = photos.nearest(vectors, SHORTLIST_FACE_GONE if any(gone) else SHORTLIST)
    out: list[PhotoVote | None] = []
    for rows, thumb, usable, wide in zip(near, thumbs, usables, gone, strict=True):
        rows = rows if wide else rows[:SHORTLIST]
        ev = copy_evidence(thumb, usable, photos.thumbnails[rows])
        j = int(np.argmax(ev))
        out.append(PhotoVote(int(rows[j]), photos.rows[int(rows[j])], float(ev[j])) if ev[j] >= FIRE else None)
    return out


def needs_photo(face_score: float, face_status: str) -> bool:
    """Whether a probe's photo evidence is worth computing: its face is not sure, or was washed out."""
    return not (face_score >= FACE_SURE) or face_status == "fallback"
