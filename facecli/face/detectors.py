"""Face detectors: the :class:`FaceDetector` protocol and the registry the preprocessing record names them from.

A model's :class:`~facecli.face.preprocess.Preprocessing` says ``detect``: "none" (no detection), "auto"
(the default detector, :data:`DEFAULT_DETECTOR`) or a registry name. Adding a detector is one module that
implements :class:`FaceDetector` plus one line in :data:`DETECTORS`.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in source-image pixels

DETECTED = "detected"  # found by the detector
FALLBACK = "fallback"  # placed by the detector's framing rule (a degraded image whose face it could not see)

# registry name -> "module:class"; each class implements FaceDetector
DETECTORS: dict[str, str] = {
    "mtcnn": "facecli.face.mtcnn:MTCNNDetector",
}
DEFAULT_DETECTOR = "mtcnn"  # what detect="auto" runs


@dataclass(frozen=True)
class Face:
    """One face: its box, five landmarks ((5, 2) x, y in source pixels: left eye, right eye, nose tip, left
    and right mouth corner), the detector's score, and how it was found (``status``)."""

    box: Box
    landmarks: np.ndarray
    score: float
    status: str = DETECTED


class FaceDetector(Protocol):
    """What facecli needs of a face detector.

    ``box_fraction``: the larger side of the detector's face box as a share of the side of an LFW-style
    face photo (the median over clean photos), so that a face-box crop can be framed like a centred crop
    (:func:`facecli.face.preprocess.margin_for_crop`). Instances are shared by the decoder threads:
    ``detect`` must be thread-safe.
    """

    box_fraction: ClassVar[float]

    def detect(self, bgr: np.ndarray, *, largest_only: bool = False, **options: Any) -> list[Face]:
        """Faces in a BGR uint8 image, largest first (only the largest with ``largest_only``); [] when none."""
        ...


def detector_names() -> tuple[str, ...]:
    """The values a preprocessing record's ``detect`` may take besides "none"."""
    return ("auto", *DETECTORS)


def detector_class(name: str = "auto") -> type:
    """The registered detector class for ``name`` ("auto" = :data:`DEFAULT_DETECTOR`)."""
    key = DEFAULT_DETECTOR if name == "auto" else name
    if key not in DETECTORS:
        raise ValueError(f"detect must be 'none' or one of {', '.join(detector_names())}, not {name!r}")
    module, cls = DETECTORS[key].split(":")
    return getattr(importlib.import_module(module), cls)


_lock = threading.Lock()
_instances: dict[type, Any] = {}


def get_detector(name: str = "auto") -> FaceDetector:
    """The process-wide instance of the detector ``name`` (made once, on first use)."""
    cls = detector_class(name)
    with _lock:
        if cls not in _instances:
            _instances[cls] = cls()
        return _instances[cls]


def detect_faces(bgr: np.ndarray, detector: str = "auto", **options: Any) -> list[Face]:
    """Faces in a BGR uint8 image found by ``detector`` (see :meth:`FaceDetector.detect` for ``options``)."""
    return get_detector(detector).detect(bgr, **options)
