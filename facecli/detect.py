"""Offline face detection with the Haar cascade that ships inside OpenCV (no download at run time).

The detector gives boxes only (no landmarks), so alignment is the square crop around the box made by
:func:`facecli.preprocess.crop_face`.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from facecli.errors import FacecliError
from facecli.preprocess import Box

_CASCADE = "haarcascade_frontalface_default.xml"
_local = threading.local()  # CascadeClassifier is not thread-safe: one per thread


def _cascade() -> cv2.CascadeClassifier:
    clf = getattr(_local, "clf", None)
    if clf is None:
        path = Path(cv2.data.haarcascades) / _CASCADE
        clf = cv2.CascadeClassifier(str(path))
        if clf.empty():
            raise FacecliError(f"OpenCV's face cascade is missing ({path}); install opencv-python-headless<5")
        _local.clf = clf
    return clf


def detect_faces(img: np.ndarray, max_side: int = 640, min_face_frac: float = 0.08) -> list[Box]:
    """Face boxes (x, y, w, h) in ``img`` (BGR uint8), largest first; empty when none is found.

    The image is searched at most ``max_side`` pixels on its longer side (faster on large photos);
    faces smaller than ``min_face_frac`` of the shorter side are ignored.
    """
    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else img
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    min_side = max(20, int(min(gray.shape) * min_face_frac))
    found = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    boxes = [tuple(int(round(v / scale)) for v in b) for b in (found if len(found) else [])]
    return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)  # type: ignore[return-value]
