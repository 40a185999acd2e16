"""Offline face detection with five landmarks: MTCNN run by ONNX Runtime (no torch at inference).

MTCNN (Zhang et al., 2016) is a cascade of three small networks: P-Net proposes windows over an image
pyramid, R-Net refines them on 24x24 crops, O-Net scores them on 48x48 crops and places five landmarks
(left eye, right eye, nose tip, left and right mouth corner). The weights ship in ``models/`` as
``mtcnn_{pnet,rnet,onet}.onnx``, converted once from the ``facenet-pytorch`` wheel (MIT) by
:mod:`facecli.training.mtcnn`.

:class:`MTCNNDetector` (registry name "mtcnn", what ``detect="auto"`` runs) wraps the cascade for the photos
facecli meets:

- large photos are searched on a copy at most ``max_side`` pixels long and the results mapped back;
- when nothing is found, the image is searched again inside a padded canvas, which finds faces in tight
  crops (a face that fills the frame has no context for the 12x12 P-Net windows);
- when still nothing is found, O-Net is asked directly about the face an LFW-style frame would hold
  (:data:`FRAME_PRIOR`: the median face of FACECOM's photos, scaled to the image). Noise and rain defeat
  P-Net's proposals before they defeat O-Net, whose landmarks stay usable; a face accepted this way is
  marked ``fallback``. A photo without a face (a cat, a cup) fails O-Net's check and stays ``not_found``;
- when the centre of the frame is washed out by glare (FACECOM's "sunny" images: the face is a white
  disc that no detector can see), the face is placed where the framing puts it
  (:data:`FRAME_PRIOR_LANDMARKS`), also marked ``fallback``. Such a face is added even when a face was
  detected elsewhere in the frame (a bystander), unless a detected face covers the frame's centre.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from facecli.errors import FacecliError
from facecli.face.detectors import DETECTED, FALLBACK, Face
from facecli.shipped import models_dir

# stage thresholds of the cascade (P-Net, R-Net, O-Net), the pyramid factor and NMS overlaps
THRESHOLDS = (0.8, 0.7, 0.8)
PYRAMID_FACTOR = 0.709
# NMS overlaps: after P-Net over the whole pyramid, after R-Net, after O-Net (min). The first is low because
# the pyramid proposes each face once per level, boxes that nest (IoU about 0.5 between neighbouring levels,
# 0.25 two levels apart): keeping one of them halves R-Net's work and R-Net's regression recovers the box.
# Measured on FACECOM's held-out identities (scripts/eval_detection.py): the same faces found, the same
# landmark error; 30% less detection time when every face is wanted.
NMS_OVERLAP = (0.3, 0.4, 0.7)
# O-Net's score needed to accept the framing prior as a face (the image had no proposal of its own)
FALLBACK_THRESHOLD = 0.5
# The face of an LFW-style frame: the median MTCNN box (x1, y1, x2, y2) and the median five landmarks
# over FACECOM's clean training photos (training-side identities), in units of the centred square's side
# (measured by ``scripts/eval_detection.py --prior``).
FRAME_PRIOR = (0.317, 0.259, 0.679, 0.750)
FRAME_PRIOR_LANDMARKS = ((0.4156, 0.4479), (0.5817, 0.4453), (0.4995, 0.5435), (0.4271, 0.6279), (0.5725, 0.6266))
# glare: the share of the frame centre's pixels brighter than GLARE_LEVEL (0-255 grey) that marks a face
# washed out by light (FACECOM's "sunny" images: 1.0 there, at most 0.02 in every other kind)
GLARE_LEVEL = 235
GLARE_SHARE = 0.9
# with largest_only, faces at least this share of the shorter side are searched for first (cheap: a short
# pyramid); any face found there is larger than every face the full search could add
COARSE_FRACTION = 0.25
# the smallest face searched for, in pixels of the (at most max_side long) search copy: the face models see
# 112-150 px chips, and a face under 48 px is blown up three times; the first pyramid level costs the most
MIN_FACE = 48
# the padded second search looks for a face that fills a tight crop: its canvas is small, so it keeps a finer
# pyramid (with 48 px, 12 of 49 tight crops of astronaut()'s face were missed; with 40, 6, as before)
PAD_MIN_FACE = 40
# how much a tight crop is padded on each side before the second search, as a share of its size
PAD_FRACTION = 0.3

# Constants measured with MTCNN's boxes and landmarks; a new detector measures its own.
# The larger side of MTCNN's face box is 0.49 of the side of an LFW-style face photo: the larger side of the
# median box FRAME_PRIOR below (0.750 - 0.259), re-measured with ``scripts/eval_detection.py --prior``.
BOX_FRACTION = 0.49
# Where MTCNN's five points fall in dlib's 150x150 face chips (dlib.get_face_chip, padding 0.25): the median
# over 346 FACECOM training photos (dlib's HOG detector and 5-point shape predictor made the chips, MTCNN
# then found the points on each chip), made left-right symmetric. Aligning with it reproduces the framing
# dlib's face-recognition ResNet was trained on (re-measure with another detector's points on the same chips).
DLIB_CHIP_LANDMARKS = ((0.3061, 0.2938), (0.6711, 0.2938), (0.4886, 0.5114), (0.3318, 0.6870), (0.6454, 0.6870))


class MTCNN:
    """The three MTCNN networks as ONNX Runtime sessions (thread-safe; one intra-op thread each).

    One instance serves every decoder thread: parallelism comes from the threads, not from inside a call.
    """

    def __init__(self, model_dir: Path | None = None) -> None:
        import onnxruntime as ort

        folder = model_dir or models_dir()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.sessions = {}
        for name in ("pnet", "rnet", "onet"):
            path = folder / f"mtcnn_{name}.onnx"
            if not path.is_file():
                raise FacecliError(f"face detector weights missing: {path}")
            self.sessions[name] = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def _run(self, name: str, x: np.ndarray) -> list[np.ndarray]:
        return self.sessions[name].run(None, {"input": x})

    # -- the cascade -------------------------------------------------------------------------------------

    def detect(self, rgb: np.ndarray, min_face: float) -> list[Face]:
        """Faces in an RGB uint8 image, no smaller than ``min_face`` pixels; unsorted."""
        boxes = self._propose(rgb, min_face)
        if len(boxes) == 0:
            return []
        boxes = self._refine(rgb, boxes)
        if len(boxes) == 0:
            return []
        return self._output(rgb, boxes, THRESHOLDS[2], DETECTED)

    def check(self, rgb: np.ndarray, box_xyxy: np.ndarray, threshold: float) -> list[Face]:
        """O-Net alone on given square boxes (x1, y1, x2, y2): the faces it accepts there."""
        return self._output(rgb, np.asarray(box_xyxy, np.float64).reshape(-1, 4), threshold, FALLBACK)

    def _propose(self, rgb: np.ndarray, min_face: float) -> np.ndarray:
        h, w = rgb.shape[:2]
        m = 12.0 / min_face
        side = min(h, w) * m
        scale = m
        found = []
        level = rgb
        while side >= 12:
            hs, ws = int(h * scale + 1), int(w * scale + 1)
            # each level is area-averaged from the last one rather than from the image: the same smoothing
            # for a fraction of the cost
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            level = cv2.resize(level, (ws, hs), interpolation=interp)
            x = _normalise(level[None])
            reg, prob = self._run("pnet", x)
            ys, xs = np.nonzero(prob[0] >= THRESHOLDS[0])
            if len(ys):
                b = np.stack([
                    np.floor((2 * xs + 1) / scale), np.floor((2 * ys + 1) / scale),
                    np.floor((2 * xs + 12) / scale), np.floor((2 * ys + 12) / scale),
                    prob[0, ys, xs], *(reg[0, k, ys, xs] for k in range(4)),
                ], axis=1)
                found.append(b[nms(b[:, :4], b[:, 4], 0.5)])
            scale *= PYRAMID_FACTOR
            side *= PYRAMID_FACTOR
        if not found:
            return np.zeros((0, 5))
        b = np.concatenate(found)
        b = b[nms(b[:, :4], b[:, 4], NMS_OVERLAP[0])]
        bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        out = np.stack([b[:, 0] + b[:, 5] * bw, b[:, 1] + b[:, 6] * bh, b[:, 2] + b[:, 7] * bw,
                        b[:, 3] + b[:, 8] * bh, b[:, 4]], axis=1)
        return squarify(out)

    def _refine(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        reg, prob = self._run("rnet", crop_boxes(rgb, boxes, 24))
        keep = prob >= THRESHOLDS[1]
        boxes, reg, prob = boxes[keep], reg[keep], prob[keep]
        if len(boxes) == 0:
            return boxes
        boxes = np.concatenate([boxes[:, :4], prob[:, None]], axis=1)
        pick = nms(boxes[:, :4], boxes[:, 4], NMS_OVERLAP[1])
        return squarify(regress(boxes[pick], reg[pick]))

    def _output(self, rgb: np.ndarray, boxes: np.ndarray, threshold: float, status: str) -> list[Face]:
        reg, pts, prob = self._run("onet", crop_boxes(rgb, boxes, 48))
        keep = prob >= threshold
        boxes, reg, pts, prob = boxes[keep, :4], reg[keep], pts[keep], prob[keep]
        if len(boxes) == 0:
            return []
        x1, y1 = np.floor(boxes[:, 0]), np.floor(boxes[:, 1])
        bw = np.floor(boxes[:, 2]) - x1 + 1
        bh = np.floor(boxes[:, 3]) - y1 + 1
        lx = x1[:, None] + bw[:, None] * pts[:, :5] - 1
        ly = y1[:, None] + bh[:, None] * pts[:, 5:] - 1
        final = regress(np.concatenate([boxes, prob[:, None]], axis=1), reg)
        pick = nms(final[:, :4], final[:, 4], NMS_OVERLAP[2], mode="min")
        faces = []
        for i in pick:
            bx1, by1, bx2, by2, score = final[i]
            box = (int(round(bx1)), int(round(by1)), int(round(bx2 - bx1)), int(round(by2 - by1)))
            faces.append(Face(box, np.stack([lx[i], ly[i]], axis=1).astype(np.float32), float(score), status))
        return faces


# -- box helpers -------------------------------------------------------------------------------------------


def _normalise(batch: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) RGB uint8 -> MTCNN's (N, 3, H, W) float32 input in [-1, 1] (one OpenCV pass)."""
    if not len(batch):
        return np.zeros((0, 3, *batch.shape[1:3]), np.float32)
    return cv2.dnn.blobFromImages(list(batch), 0.0078125, (batch.shape[2], batch.shape[1]), (127.5, 127.5, 127.5),
                                  swapRB=False, crop=False)


def nms(boxes: np.ndarray, scores: np.ndarray, overlap: float, mode: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (highest score first).

    ``mode`` "union" compares intersection over union, "min" intersection over the smaller box.
    """
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if mode == "union":  # OpenCV's C++ NMS (intersection over union), far cheaper than a Python loop
        xywh = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1], 1)
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(float).tolist(), 0.0, overlap)
        return np.asarray(keep, np.int64).reshape(-1)
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= overlap]
    return np.asarray(keep, np.int64)


def squarify(boxes: np.ndarray) -> np.ndarray:
    """Boxes (x1, y1, x2, y2, ...) made square around their centres, side = the longer side."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply the networks' box offsets (fractions of the box's width and height)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def crop_boxes(rgb: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """Normalised (N, 3, side, side) crops of integer-rounded boxes; outside the image is zero."""
    h, w = rgb.shape[:2]
    out = np.zeros((len(boxes), side, side, 3), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(np.floor(boxes[:, :4]).astype(np.int64)):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        if bw < 2 or bh < 2:
            continue
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2 + 1, w), min(y2 + 1, h)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        patch = rgb[cy1:cy2, cx1:cx2]
        if (cx1, cy1, cx2, cy2) != (x1, y1, x2 + 1, y2 + 1):
            patch = cv2.copyMakeBorder(patch, int(cy1 - y1), int(y2 + 1 - cy2), int(cx1 - x1), int(x2 + 1 - cx2),
                                       cv2.BORDER_CONSTANT, value=(0, 0, 0))
        interp = cv2.INTER_AREA if bw > side else cv2.INTER_LINEAR
        out[k] = cv2.resize(patch, (side, side), interpolation=interp)
    return _normalise(out)


# -- the detector facecli uses -------------------------------------------------------------------------------


def frame_prior_box(h: int, w: int) -> np.ndarray:
    """The square box (x1, y1, x2, y2) where an LFW-style frame of this size holds its face."""
    side = min(h, w)
    ox, oy = (w - side) / 2, (h - side) / 2
    x1, y1, x2, y2 = FRAME_PRIOR
    box = np.array([ox + x1 * side, oy + y1 * side, ox + x2 * side, oy + y2 * side, 1.0])
    return squarify(box[None])[0, :4]


def frame_prior_face(h: int, w: int) -> Face:
    """The face an LFW-style frame of this size holds where it is: :data:`FRAME_PRIOR_LANDMARKS`, placed."""
    side = min(h, w)
    off = np.float32([(w - side) / 2, (h - side) / 2])
    pts = np.asarray(FRAME_PRIOR_LANDMARKS, np.float32) * side + off
    x1, y1, x2, y2 = frame_prior_box(h, w)
    return Face((int(round(x1)), int(round(y1)), int(round(x2 - x1)), int(round(y2 - y1))), pts, 0.0, FALLBACK)


def centre_glare(rgb: np.ndarray) -> bool:
    """True when the centre of the frame's face region is washed out (>= GLARE_SHARE above GLARE_LEVEL)."""
    x1, y1, x2, y2 = frame_prior_box(*rgb.shape[:2])
    cx, cy, r = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4
    patch = rgb[max(0, int(cy - r)) : int(cy + r), max(0, int(cx - r)) : int(cx + r)]
    if patch.size == 0:
        return False
    return float((patch.min(axis=2) > GLARE_LEVEL).mean()) >= GLARE_SHARE


def _covers_centre(f: Face, h: int, w: int) -> bool:
    x, y, bw, bh = f.box
    return x <= w / 2 <= x + bw and y <= h / 2 <= y + bh


class MTCNNDetector:
    """The shipped face detector (registry name "mtcnn"): the cascade plus the search rules above.

    The three networks are loaded on first use and shared by every thread.
    """

    box_fraction: ClassVar[float] = BOX_FRACTION

    def __init__(self) -> None:
        self._nets: MTCNN | None = None
        self._lock = threading.Lock()

    @property
    def nets(self) -> MTCNN:
        with self._lock:
            if self._nets is None:
                self._nets = MTCNN()
            return self._nets

    def detect(self, bgr: np.ndarray, *, largest_only: bool = False, **options) -> list[Face]:
        """Faces in ``bgr``, largest first (see :func:`search` for ``options``)."""
        return search(self.nets, bgr, largest_only=largest_only, **options)


def search(
    net: MTCNN,
    img: np.ndarray,
    *,
    max_side: int = 640,
    min_face: int = MIN_FACE,
    min_face_frac: float = 0.1,
    pad: bool = True,
    fallback: bool = True,
    largest_only: bool = False,
) -> list[Face]:
    """Faces in ``img`` (BGR uint8) found by the cascade ``net``, largest first; empty when none is found.

    The search runs on a copy at most ``max_side`` pixels long (results are mapped back to ``img``'s
    pixels); faces smaller than ``min_face`` pixels of that copy, or than ``min_face_frac`` of its shorter
    side, are ignored (a face smaller than :data:`MIN_FACE` px is too small for the models' 112-150 px inputs,
    and the smallest face sets the detector's cost).
    ``pad``: when nothing is found, search again inside a canvas padded by :data:`PAD_FRACTION` on each
    side (tight face crops). ``fallback``: when still nothing is found, let O-Net judge the framing prior
    (:func:`frame_prior_box`), and place the framing's face where glare has washed the centre out
    (:func:`centre_glare`); such faces have ``status`` "fallback". ``largest_only``: only the largest face
    is wanted (match, galleries), so large faces are searched for first (:data:`COARSE_FRACTION`) and the
    costly search for small faces runs only when none is found; the result is that one face.
    """
    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) \
        if scale < 1 else img
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    smallest = max(float(min_face), min(rgb.shape[:2]) * min_face_frac)
    faces = []
    coarse = min(rgb.shape[:2]) * COARSE_FRACTION
    if largest_only and coarse > smallest:
        faces = net.detect(rgb, coarse)
    if not faces:
        faces = net.detect(rgb, smallest)
    if not faces and pad:
        sh, sw = rgb.shape[:2]
        p = int(round(max(sh, sw) * PAD_FRACTION))
        padded = cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        pad_smallest = max(float(min(min_face, PAD_MIN_FACE)), min(rgb.shape[:2]) * min_face_frac)
        faces = [_shift(f, -p, -p) for f in net.detect(padded, pad_smallest)]
    if fallback and not faces:
        faces = net.check(rgb, frame_prior_box(*rgb.shape[:2]), FALLBACK_THRESHOLD)
    if fallback and centre_glare(rgb) and not any(_covers_centre(f, *rgb.shape[:2]) for f in faces):
        faces = [*faces, frame_prior_face(*rgb.shape[:2])]
    if scale < 1:
        faces = [_rescale(f, 1.0 / scale) for f in faces]
    faces = sorted(faces, key=lambda f: f.box[2] * f.box[3], reverse=True)
    return faces[:1] if largest_only else faces


def _shift(f: Face, dx: float, dy: float) -> Face:
    x, y, bw, bh = f.box
    return Face((int(x + dx), int(y + dy), bw, bh), f.landmarks + np.float32([dx, dy]), f.score, f.status)


def _rescale(f: Face, s: float) -> Face:
    return Face(tuple(int(round(v * s)) for v in f.box), f.landmarks * np.float32(s), f.score, f.status)  # type: ignore[arg-type]
