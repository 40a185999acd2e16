"""Preprocessing: the one source of truth shared by training, export and inference.

A :class:`Preprocessing` is stored with every model (run-folder JSON and ONNX metadata) and applied by
:func:`crop_face` (geometry) and :func:`to_tensor` (colour order, scaling, mean/std) everywhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from facecli.face.align import TEMPLATES, align_face
from facecli.face.detectors import Box, detector_class, detector_names
from facecli.restore import RESTORE_MODES

MAX_SIZE = 1024  # the largest model input side accepted (pixels)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes a model input.

    size: side of the square input in pixels (112 by default: fast on CPU, enough for FACECOM faces).
    mean, std: per-channel normalisation applied to values scaled to [0, 1], in ``colour`` order.
    colour: channel order the model expects ("RGB" or "BGR").
    crop: fraction of the shorter image side kept by the centred square crop used when no face box is
        known (0.8 keeps the face and some hair of a 250x250 LFW-style photo).
    detect: "none" (centred crop only), "auto" (the default face detector) or a detector's registry name
        (:data:`facecli.face.detectors.DETECTORS`).
    face_margin: without alignment, the square around a detected face box is this many times the box's
        larger side. :func:`margin_for_crop` gives the margin whose framing matches a centred ``crop`` on
        LFW-style photos.
    template: "none", or the alignment template (:data:`facecli.face.align.TEMPLATES`, e.g. "arcface") that a
        detected face's five landmarks are warped onto by a similarity transform.
    zoom: with a template, > 1 shows more context around the face (1 = the template as published).
    restore: "auto" (assess each decoded image and remove impulse noise or rain streaks before detection,
        :mod:`facecli.restore`) or "none". Models recorded before restoration existed read as "auto".
    flip: identity models: the embedding is the normalised mean of the face's and its mirror image's
        (:func:`flip_average`), in training's evaluation, export checks and every command alike.
    """

    size: int = 112
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    colour: str = "RGB"
    crop: float = 0.8
    detect: str = "none"
    face_margin: float = 1.6
    template: str = "none"
    zoom: float = 1.0
    restore: str = "auto"
    flip: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        """Rebuild from :meth:`to_dict` output; unknown keys are ignored, missing ones take defaults."""
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for key in ("mean", "std"):
            if key in known:
                known[key] = tuple(float(v) for v in known[key])
        spec = cls(**known)
        spec.validate()
        return spec

    def replace(self, **changes: Any) -> Preprocessing:
        """A copy with some fields changed."""
        d = self.to_dict()
        d.update(changes)
        return Preprocessing.from_dict(d)

    def validate(self) -> None:
        """Raise ValueError on settings no model could use (a wrong type, an impossible value, or an input size
        beyond MAX_SIZE, which would make every image ask for gigabytes)."""
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 16 <= self.size <= MAX_SIZE:
            raise ValueError(f"input size must be a whole number of pixels in [16, {MAX_SIZE}], not {self.size!r}")
        for name in ("crop", "zoom", "face_margin"):
            v = getattr(self, name, 1.0)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, not {v!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or not all(math.isfinite(v) for v in (*self.mean, *self.std)) \
                or min(self.std) <= 0:
            raise ValueError("mean and std must be three finite numbers each, std above 0")
        if self.colour not in ("RGB", "BGR"):
            raise ValueError(f"colour must be RGB or BGR, not {self.colour!r}")
        if not 0.1 <= self.crop <= 1.0:
            raise ValueError(f"crop must lie in [0.1, 1], not {self.crop}")
        if self.detect != "none" and self.detect not in detector_names():
            raise ValueError(f"detect must be 'none' or one of {', '.join(detector_names())}, not {self.detect!r}")
        if self.template != "none" and self.template not in TEMPLATES:
            raise ValueError(f"template must be 'none' or one of {', '.join(sorted(TEMPLATES))}, not {self.template!r}")
        if self.restore not in RESTORE_MODES:
            raise ValueError(f"restore must be one of {', '.join(RESTORE_MODES)}, not {self.restore!r}")
        if not isinstance(self.flip, bool):
            raise ValueError(f"flip must be true or false, not {self.flip!r}")
        if not 0.5 <= self.zoom <= 3.0:
            raise ValueError(f"zoom must lie in [0.5, 3], not {self.zoom}")

    @property
    def aligned(self) -> bool:
        """True when detected faces are warped onto a landmark template."""
        return self.template != "none"


def margin_for_crop(crop: float, detector: str = "auto") -> float:
    """The face-box margin that frames a face found by ``detector`` like a centred ``crop`` frames an LFW-style
    photo: ``crop`` over the detector's ``box_fraction`` (its box's share of such a photo)."""
    return round(crop / detector_class(detector).box_fraction, 3)


def square_region(img_shape: tuple[int, ...], spec: Preprocessing, box: Box | None) -> tuple[int, int, int]:
    """The square (centre x, centre y, side) cut from an image: around ``box`` or the centred crop."""
    h, w = img_shape[:2]
    if box is not None:
        x, y, bw, bh = box
        side = max(bw, bh) * spec.face_margin
        return int(round(x + bw / 2)), int(round(y + bh / 2)), max(2, int(round(side)))
    side = max(2, int(round(min(h, w) * spec.crop)))
    return w // 2, h // 2, side


def crop_face(
    img: np.ndarray, spec: Preprocessing, box: Box | None = None, landmarks: np.ndarray | None = None
) -> np.ndarray:
    """Cut the model's square view of ``img`` (BGR uint8) at ``spec.size`` pixels.

    With ``landmarks`` (five points) and an alignment ``template`` the face is warped onto the template.
    Otherwise, with ``box`` the square is centred on the face box and ``face_margin`` times its size;
    without either, it is the centred ``crop`` fraction of the shorter side. Parts outside the image are
    edge-replicated.
    """
    if landmarks is not None and spec.aligned:
        return align_face(img, landmarks, spec.size, spec.template, spec.zoom)
    h, w = img.shape[:2]
    cx, cy, side = square_region(img.shape, spec, box)
    x0, y0 = cx - side // 2, cy - side // 2
    x1, y1 = x0 + side, y0 + side
    pad = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    patch = img[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    if any(pad):
        patch = cv2.copyMakeBorder(patch, *pad, borderType=cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > spec.size else cv2.INTER_LINEAR
    return cv2.resize(patch, (spec.size, spec.size), interpolation=interp)


def to_tensor(crops: np.ndarray | list[np.ndarray], spec: Preprocessing) -> np.ndarray:
    """Turn BGR uint8 crops (N, S, S, 3) into the model's float32 NCHW input: (x / 255 - mean) / std in the
    model's colour order. One OpenCV pass (``cv2.dnn.blobFromImages``, about 10x NumPy's speed) when the three
    channels share one std, as every shipped model's do; NumPy otherwise."""
    batch = np.asarray(crops if isinstance(crops, np.ndarray) else np.stack(crops))
    if batch.ndim == 3:
        batch = batch[None]
    std = np.asarray(spec.std, dtype=np.float32)
    swap = spec.colour == "RGB"
    if len(batch) and np.all(std == std[0]) and batch.dtype == np.uint8:
        mean = tuple(float(v) * 255.0 for v in spec.mean)
        return cv2.dnn.blobFromImages(list(batch), 1.0 / (255.0 * float(std[0])), (batch.shape[2], batch.shape[1]),
                                      mean, swapRB=swap, crop=False)
    if swap:
        batch = batch[..., ::-1]
    x = batch.astype(np.float32) * np.float32(1.0 / 255.0)
    x -= np.asarray(spec.mean, dtype=np.float32)
    x /= std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def flip_average(run: Any, x: np.ndarray) -> np.ndarray:
    """Embeddings of the NCHW batch ``x`` averaged with those of its mirror image: ``run`` embeds the batch and
    its mirror (two calls: as fast as one doubled batch on the CPU, at half the peak memory), each is
    L2-normalised, and their sum is normalised again."""
    a = np.asarray(run(x), dtype=np.float32)
    b = np.asarray(run(np.ascontiguousarray(x[..., ::-1])), dtype=np.float32)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    m = a + b
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
