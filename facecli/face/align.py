"""Face alignment: a similarity transform from five detected landmarks to a model's canonical template.

The five points are, in image order: left eye, right eye, nose tip, left mouth corner, right mouth corner
(left = smaller x in the image). A template gives where those points sit in the model's square input,
in units of the input side, so one template serves every input size. A model's template is named in its
:class:`facecli.face.preprocess.Preprocessing` record and used identically by training, export checks,
gallery building, matching and classification.
"""

from __future__ import annotations

import cv2
import numpy as np

from facecli.face.mtcnn import DLIB_CHIP_LANDMARKS

# ArcFace's 112x112 template (insightface), in units of the side: the de-facto standard for face crops.
_ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float64
)
# dlib's 150 px chip, as MTCNN's five points fall on it (measured with the detector: facecli.face.mtcnn)
_DLIB_150 = np.array(DLIB_CHIP_LANDMARKS, np.float64)
TEMPLATES: dict[str, np.ndarray] = {"arcface": _ARCFACE_112 / 112.0, "dlib": _DLIB_150}


def template_points(name: str, size: int, zoom: float = 1.0) -> np.ndarray:
    """The template's five points in pixels of a ``size`` x ``size`` input.

    ``zoom`` > 1 shows more context around the face (the points move towards the centre by 1/zoom),
    < 1 shows less.
    """
    if name not in TEMPLATES:
        raise ValueError(f"unknown alignment template {name!r}; known: {', '.join(sorted(TEMPLATES))}")
    if zoom <= 0:
        raise ValueError(f"zoom must be positive, not {zoom}")
    unit = (TEMPLATES[name] - 0.5) / zoom + 0.5
    return unit * size


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 least-squares similarity transform (rotation, uniform scale, translation) mapping src to dst.

    Umeyama's closed form (1991); reflections are excluded. ``src`` and ``dst`` are (N, 2) with N >= 2.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError("src and dst must be matching (N, 2) arrays with N >= 2")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("the source points coincide")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    scale = (sig * sign).sum() / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def align_face(img: np.ndarray, landmarks: np.ndarray, size: int, template: str, zoom: float = 1.0) -> np.ndarray:
    """Warp ``img`` so that its five ``landmarks`` land on ``template``: a ``size`` x ``size`` aligned crop.

    Pixels outside the image are edge-replicated. When the face is much larger than the crop the image is
    first shrunk with area averaging, so the warp never aliases.
    """
    m = estimate_similarity(landmarks, template_points(template, size, zoom))
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    if scale < 0.5:  # downsampling by more than 2x: pre-shrink (area) so bilinear sampling does not alias
        f = min(1.0, 2.0 * scale)
        h, w = img.shape[:2]
        small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / w, small.shape[0] / h
        m = m @ np.array([[1 / fx, 0, 0], [0, 1 / fy, 0], [0, 0, 1]])
        img = small
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
