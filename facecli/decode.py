"""Reading image files robustly into 8-bit BGR arrays (OpenCV's layout), in bounded memory.

Before anything is decoded, the file must be a regular file of at most :data:`MAX_FILE_BYTES`, and its
header (read by Pillow, which decodes no pixels) gives its size. Large JPEGs are decoded directly at
1/2, 1/4 or 1/8 of their size (OpenCV's ``IMREAD_REDUCED_*``, done inside the JPEG decoder) as long as
the shorter side stays at least :data:`REDUCE_TO_SIDE` pixels, far more than any model input or the
detector needs. An image that would still exceed :data:`MAX_PIXELS` is refused with "too many pixels",
and images over :data:`BIG_PIXELS` are decoded one at a time, so the decoder threads together hold at
most one big image.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# Refuse absurd files before reading them.
MAX_FILE_BYTES = 200 * 1024 * 1024
# The most pixels facecli decodes (after JPEG reduction): 64 MP is 192 MB of BGR.
MAX_PIXELS = 64_000_000
# JPEGs are decoded reduced while their shorter side stays at least this long.
REDUCE_TO_SIDE = 1000
# Images decoded above this many pixels take turns.
BIG_PIXELS = 16_000_000
_big = threading.BoundedSemaphore(1)
# facecli checks the pixel count itself before decoding; Pillow only reads headers here
Image.MAX_IMAGE_PIXELS = None


class DecodeError(Exception):
    """A file that could not be read as an image; the message is written to the CSV ``error`` column."""


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read any supported image as an 8-bit, 3-channel BGR array.

    Grayscale is expanded to 3 channels, 16-bit is scaled to 8-bit, alpha is dropped, CMYK JPEGs are
    converted and the EXIF orientation is applied (all by OpenCV's ``IMREAD_COLOR``). Large JPEGs come
    back reduced (see the module docstring). Raises DecodeError for missing, empty, irregular (FIFO,
    device), oversized or undecodable files and for images with too many pixels.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DecodeError("not a regular file")
    if st.st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    if st.st_size > MAX_FILE_BYTES:
        raise DecodeError(f"file too large ({st.st_size / 2**20:.0f} MiB)")
    w, h, fmt = _header(path)
    reduce = reduction(w, h) if fmt == "JPEG" else 1
    pixels = (w // reduce) * (h // reduce)
    if pixels > MAX_PIXELS:
        raise DecodeError(f"too many pixels ({w} x {h})")
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from None
    if pixels > BIG_PIXELS:
        with _big:
            img = decode_bytes(buf, reduce)
    else:
        img = decode_bytes(buf, reduce)
    if img is None:
        raise DecodeError("not a decodable image")
    return img


def reduction(w: int, h: int) -> int:
    """The JPEG reduction (1, 2, 4 or 8) that keeps the shorter side at least REDUCE_TO_SIDE pixels."""
    for r in (8, 4, 2):
        if min(w, h) // r >= REDUCE_TO_SIDE:
            return r
    return 1


def _header(path: Path) -> tuple[int, int, str]:
    """(width, height, format) from the file header without decoding pixels; (0, 0, "") when unknown."""
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height), str(im.format or "")
    except Exception:  # not an image Pillow knows: OpenCV gets its turn (and the size check after it)
        return 0, 0, ""


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_bytes(buf: np.ndarray, reduce: int = 1) -> np.ndarray | None:
    """Decode an encoded image buffer to 8-bit BGR (JPEGs 1/``reduce`` of their size), or None on failure."""
    try:
        img = cv2.imdecode(buf, _REDUCED[reduce])
    except cv2.error:
        return None
    if img is None or img.size == 0:
        return None
    if img.shape[0] * img.shape[1] > MAX_PIXELS:  # a format Pillow could not size: refuse after the fact
        return None
    if img.dtype != np.uint8:  # defensive: IMREAD_COLOR already yields 8-bit
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
    return img


def rgb_array_to_bgr(arr: np.ndarray) -> np.ndarray:
    """An in-memory RGB, RGBA or grayscale uint8 image as the BGR uint8 array the pipeline uses.

    Raises DecodeError (one line) for other dtypes or shapes, empty images and images with too many pixels.
    """
    if not isinstance(arr, np.ndarray):
        raise DecodeError(f"not a numpy array: {type(arr).__name__}")
    if arr.dtype != np.uint8:
        raise DecodeError(f"array images must be uint8 (0-255), not {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise DecodeError(f"array images must be HxW, HxWx3 (RGB) or HxWx4 (RGBA), not shape {arr.shape}")
    h, w = arr.shape[:2]
    if h == 0 or w == 0:
        raise DecodeError(f"empty image array (shape {arr.shape})")
    if h * w > MAX_PIXELS:
        raise DecodeError(f"too many pixels ({w} x {h})")
    if arr.ndim == 2:
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR)
    code = cv2.COLOR_RGBA2BGR if arr.shape[2] == 4 else cv2.COLOR_RGB2BGR
    return cv2.cvtColor(np.ascontiguousarray(arr), code)
