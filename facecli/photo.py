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

from collections.abc import Sequence
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


def _bandpass(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A lightly smoothed copy and its band-pass detail (difference of Gaussians)."""
    smooth = cv2.GaussianBlur(g, (0, 0), 0.8)
    return smooth, smooth - cv2.GaussianBlur(g, (0, 0), 2.5)


def _gradients(smooth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical gradients of the smoothed copy."""
    return cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)


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


def copy_evidence(probe: np.ndarray, usable: np.ndarray, candidates: np.ndarray,
                  floor: float | None = None) -> np.ndarray:
    """How strongly a probe thumbnail (from :func:`probe_thumbnail`) looks like a degraded copy of each
    candidate thumbnail (K, 64, 64): the mean of the local correlations of their gradients and of their
    band-pass detail, in [-1, 1]. At :data:`FIRE` or above the probe is taken for a copy of that photo.

    ``floor``: the evidence is at most (1 + band-pass correlation) / 2, so a candidate whose band-pass
    correlation keeps that bound under ``floor`` is not tested further and gets the bound (below ``floor``)
    instead of its evidence. With ``floor`` = FIRE the photos that can fire are the same, at a third of the
    cost for the rest (on held-out FACECOM probes another photo's band-pass correlation never passed 0.37,
    a degraded copy's never fell below 0.72).
    """
    k = len(candidates)
    if not k or usable.sum() < MIN_WINDOWS or usable.mean() < MIN_USABLE_SHARE:
        return np.zeros(k, np.float32)
    if k == 1:  # OpenCV drops a single channel: test the one candidate twice
        return copy_evidence(probe, usable, np.concatenate([candidates, candidates]), floor)[:1]
    ps, pd = _bandpass(probe.astype(np.float32))
    cs, cd = _bandpass(np.ascontiguousarray(np.asarray(candidates, np.float32).transpose(1, 2, 0)))  # (H, W, K)
    band = _local_correlation(pd, cd.reshape(MAP_SIDE, MAP_SIDE, k), usable)
    out = 0.5 * (1.0 + band)
    test = np.flatnonzero(out >= floor) if floor is not None else np.arange(k)
    if len(test):
        sub = np.ascontiguousarray(cs.reshape(MAP_SIDE, MAP_SIDE, k)[..., np.r_[test, test[:1]]])  # >= 2 channels
        cx, cy = _gradients(sub)
        px, py = _gradients(ps)
        grad = 0.5 * (_local_correlation(px, cx, usable) + _local_correlation(py, cy, usable))[: len(test)]
        out[test] = 0.5 * (grad + band[test])
    return out.astype(np.float32)


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


@dataclass(frozen=True)
class PhotoRanking:
    """For a probe whose face is gone (washed out or not found) and whose copy evidence did not fire: the
    identities of its gallery photos nearest by the photo matcher, best first. It ranks the probe's
    identities (the face vector of a washed-out face describes the glare, not the person) and never lifts a
    score: acceptance stays with the face score, which such a face all but loses (see
    :data:`facecli.protocols.FACE_GONE_WEIGHT`). On held-out FACECOM sunny copies whose face was washed out
    and whose own photo was not in the gallery (190), the nearest identity was right for 65% this way and for
    0.5% by the face; of the 19 FACECOM-protocol copies whose evidence did not fire, for 15 against 0."""

    identities: tuple[str, ...]


# ------------------------------------------------------------------ with a photo matcher and a gallery

PHOTO_MODEL_FILE = "identity_facecom.onnx"  # the shipped photo matcher (models/)
FACE_IDENTITIES = 3  # a probe whose face leads looks for its photo among its 3 face-nearest identities' photos
FACE_LEADS = 0.6  # ... where its best face score (on the model's score scale) reaches this; below it the face
# found may be another (a poster, a reflection) or too degraded to point at its person: on 3,647 held-out
# FACECOM-protocol probes every probe whose photo was named outside its 3 face-nearest identities scored below it
FACE_SURE = 0.98  # probes whose best face score reaches this (and whose face is not washed out) skip photo
# evidence: on 3,647 held-out FACECOM-protocol probes none of the 80% above it had a wrong nearest identity


@dataclass
class PhotoView:
    """What photo evidence needs of one decoded image (:meth:`PhotoStage.view`): the photo matcher's input
    (``crop``), the plain thumbnail (``thumb``: the image as a gallery photo, a candidate) and the probe
    thumbnail with its usable mask (``probe``, ``usable``: the image as a probe); a part not asked for is None."""

    crop: np.ndarray
    thumb: np.ndarray | None = None
    probe: np.ndarray | None = None
    usable: np.ndarray | None = None


class PhotoStage:
    """The photo matcher as a second stage on the face pipeline, the one place its view of an image is cut:
    :meth:`view` runs on each decoded image (the pipeline's ``extra`` hook, before restoration, whole frame:
    detection and restoration off) and :meth:`embed` runs the matcher on views in model batches. ``plain``
    and ``probe`` say which thumbnails a caller needs (gallery photos need the plain one, probes the other).
    """

    def __init__(self, model: Any, *, plain: bool = True, probe: bool = True) -> None:
        self.model, self.plain, self.probe = model, plain, probe
        self.spec = model.preprocessing.replace(detect="none", restore="none")

    def view(self, bgr: np.ndarray) -> PhotoView:
        from facecli.face.preprocess import crop_face

        probe, usable = probe_thumbnail(bgr) if self.probe else (None, None)
        return PhotoView(crop_face(bgr, self.spec), thumbnail(bgr) if self.plain else None, probe, usable)

    def embed(self, views: Sequence[PhotoView], batch: int = 64) -> np.ndarray:
        """The matcher's unit vectors of ``views`` (N, D), run in batches of ``batch`` (a whole part at once grew
        ONNX Runtime's arena by GBs)."""
        from facecli.face.preprocess import to_tensor

        dim = int(self.model.card.embedding_dim or 512)
        if not len(views):
            return np.zeros((0, dim), np.float32)
        return np.concatenate([self.model.run(to_tensor(np.stack([v.crop for v in views[b:b + batch]]), self.spec))
                               for b in range(0, len(views), batch)]).astype(np.float32)


class PhotoEvidence:
    """Photo evidence of probes against a gallery's :class:`~facecli.gallery.PhotoSet`, batch by batch.

    ``inputs`` is the pipeline's ``extra`` hook (run on each decoded probe, before restoration); ``votes``
    runs after each batch of face embeddings and returns the photo votes of the batch's probes that need them
    (:func:`needs_photo`: the face washed out or missing, or scoring under :data:`FACE_SURE`). Where the face was
    found, its nearest identities say where the probe's photo can be (:func:`candidates_by_face`); the photo
    matcher (a second network) runs only for probes whose face is gone (:func:`candidates_by_photo`).
    """

    def __init__(self, model: Any, photos: Any, face_scores: Any, gallery: Any) -> None:
        self.photos, self.face_scores, self.gallery = photos, face_scores, gallery
        self.stage = PhotoStage(model, plain=False)
        self.inputs = self.stage.view

    def votes(self, crops: list[Any], outputs: np.ndarray) -> dict[int, PhotoVote | PhotoRanking]:
        """Photo votes (input index -> vote) of the batch's probes that need one and whose evidence fires, and
        the photo rankings of those whose face is gone and whose evidence does not (:func:`vote`)."""
        firsts = [(c, v) for c, v in zip(crops, outputs, strict=True) if c.extra is not None]
        if not firsts:
            return {}
        names, cos = self.gallery.search(np.stack([v for _, v in firsts]), FACE_IDENTITIES)
        best = self.face_scores(cos[:, 0])
        views, statuses = [c.extra for c, _ in firsts], [c.face_status for c, _ in firsts]
        need, cands = photo_candidates(self.photos, names, best, statuses, views,
                                       lambda ks: self.stage.embed([views[k] for k in ks]))
        found = vote(self.photos, cands, [views[k].probe for k in need], [views[k].usable for k in need],
                     [face_gone(statuses[k]) for k in need])
        return {firsts[k][0].index: v for k, v in zip(need, found, strict=True) if v is not None}


def photo_candidates(photos: Any, names: Sequence[Sequence[str]], best: Sequence[float], statuses: Sequence[str],
                     views: Sequence[Any], photo_vectors: Any) -> tuple[list[int], list[np.ndarray]]:
    """Which probes photo evidence can decide (:func:`needs_photo`) and, for each, the gallery photo rows to test:
    the photos of its face-nearest identities ``names`` where its face leads (:func:`face_leads`), else those
    nearest its photo-matcher vector (``photo_vectors(indices)`` computes them, only for those probes; 16 where
    the face is washed out or missing, 3 for a weak face). ``views`` hold each probe's ``probe`` thumbnail and
    ``usable`` mask. Returns (probe indices, candidate rows), in probe order."""
    need = [k for k in range(len(best)) if needs_photo(float(best[k]), statuses[k])]
    gone = [k for k in need if not face_leads(float(best[k]), statuses[k])]
    by_photo = dict(zip(gone, candidates_by_photo(photos, photo_vectors(gone), [face_gone(statuses[k]) for k in gone]),
                        strict=True)) if gone else {}
    return need, [by_photo[k] if k in by_photo else
                  candidates_by_face(photos, names[k], views[k].probe, views[k].usable) for k in need]


def face_leads(face_score: float, face_status: str) -> bool:
    """Whether a probe's face says where its photo can be: the face was found (or detection was off; not washed
    out, "fallback", nor missing, "not_found") and its best score reaches :data:`FACE_LEADS`. Then only its
    face-nearest identities' photos are candidates (:func:`candidates_by_face`); else the photo matcher finds
    them (:func:`candidates_by_photo`)."""
    return not face_gone(face_status) and face_score >= FACE_LEADS


def candidates_by_face(photos: Any, identities: Sequence[str], thumb: np.ndarray, usable: np.ndarray,
                       k: int = SHORTLIST) -> np.ndarray:
    """Gallery photo rows where a probe whose face was found can be a copy of: the photos of its
    face-nearest ``identities``; of more than ``k``, the ``k`` whose coarse thumbnails correlate best with
    the probe's (:func:`coarse_order`). No second network runs."""
    rows = photos.rows_of(identities)
    if len(rows) <= k:
        return rows
    return rows[coarse_order(thumb, usable, photos.coarse(rows, COARSE))[:k]]


def candidates_by_photo(photos: Any, vectors: np.ndarray, wide: Sequence[bool]) -> list[np.ndarray]:
    """Gallery photo rows nearest each probe's photo-matcher vector: :data:`SHORTLIST_FACE_GONE` where
    ``wide`` (the face is gone: the photo is all there is to go on), else :data:`SHORTLIST`."""
    if not len(vectors) or not len(photos.rows):
        return [np.zeros(0, np.int64) for _ in range(len(vectors))]
    near = photos.nearest(vectors, SHORTLIST_FACE_GONE if any(wide) else SHORTLIST)
    return [rows if w else rows[:SHORTLIST] for rows, w in zip(near, wide, strict=True)]


COARSE = 16  # side of the coarse thumbnails that order a face's candidate photos


def coarse_order(thumb: np.ndarray, usable: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Candidates' coarse thumbnails (K, 16, 16: :meth:`facecli.gallery.PhotoSet.coarse`) ordered by their
    correlation with the probe's over the probe's usable blocks (best first): a degraded copy keeps its
    source's coarse layout."""
    f = MAP_SIDE // COARSE
    ok = usable.reshape(COARSE, f, COARSE, f).all(axis=(1, 3)).ravel()
    if ok.sum() < 8:
        ok = np.ones(COARSE * COARSE, bool)
    p = thumb.astype(np.float32).reshape(COARSE, f, COARSE, f).mean(axis=(1, 3)).ravel()[ok]
    c = np.asarray(candidates, np.float32).reshape(len(candidates), -1)[:, ok]
    p = p - p.mean()
    c = c - c.mean(axis=1, keepdims=True)
    r = c @ p / np.maximum(np.linalg.norm(c, axis=1) * np.linalg.norm(p), 1e-6)
    return np.argsort(-r, kind="stable")


def vote(photos: Any, candidates: Sequence[np.ndarray], thumbs: Sequence[np.ndarray],
         usables: Sequence[np.ndarray], gone: Sequence[bool] | None = None) -> list[PhotoVote | PhotoRanking | None]:
    """Photo votes of probes (their candidate gallery photo rows, thumbnails and usable masks) against the
    gallery ``photos``: the candidate whose copy evidence is highest, when it reaches :data:`FIRE`. Where none
    does and the probe's face is gone (``gone``, :func:`face_gone`: washed out or not found; its candidates are then the
    photo matcher's nearest, best first), a :class:`PhotoRanking` of their identities."""
    out: list[PhotoVote | PhotoRanking | None] = []
    for rows, thumb, usable, g in zip(candidates, thumbs, usables, gone or [False] * len(candidates), strict=True):
        if not len(rows):
            out.append(None)
            continue
        ev = copy_evidence(thumb, usable, photos.thumbnails[rows], FIRE)
        j = int(np.argmax(ev))
        if ev[j] >= FIRE:
            out.append(PhotoVote(int(rows[j]), photos.rows[int(rows[j])], float(ev[j])))
        else:
            out.append(PhotoRanking(tuple(dict.fromkeys(photos.rows[int(r)] for r in rows))) if g else None)
    return out


def face_gone(face_status: str) -> bool:
    """Whether a probe has no face evidence worth ranking by: washed out ("fallback") or not found."""
    return face_status in ("fallback", "not_found")


def needs_photo(face_score: float, face_status: str) -> bool:
    """Whether a probe's photo evidence is worth computing: its face was washed out or not found, or its best
    face score is under :data:`FACE_SURE`. (Under the match's threshold alone would not do: a face the
    threshold accepts can still be the wrong person, whose photo evidence names the right one; on held-out
    FACECOM-protocol probes 1 of 3,647.)"""
    return face_gone(face_status) or not (face_score >= FACE_SURE)
