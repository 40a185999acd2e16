"""Reading image files robustly into 8-bit BGR arrays (OpenCV's layout)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

# Refuse absurd images before decoding them (OpenCV's own limit is 2**30 pixels).
MAX_FILE_BYTES = 200 * 1024 * 1024


class DecodeError(Exception):
    """A file that could not be read as an image; the message is written to the CSV ``error`` column."""


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read any supported image as an 8-bit, 3-channel BGR array.

    Grayscale is expanded to 3 channels, 16-bit is scaled to 8-bit, alpha is dropped, CMYK JPEGs are
    converted and the EXIF orientation is applied (all by OpenCV's ``IMREAD_COLOR``).
    Raises DecodeError for missing, empty, oversized or undecodable files.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from None
    if size == 0:
        raise DecodeError("empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise DecodeError(f"file too large ({size / 2**20:.0f} MiB)")
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from None
    img = decode_bytes(buf)
    if img is None:
        raise DecodeError("not a decodable image")
    return img


def decode_bytes(buf: np.ndarray) -> np.ndarray | None:
    """Decode an encoded image buffer to 8-bit BGR, or None when OpenCV cannot decode it."""
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    if img is None or img.size == 0:
        return None
    if img.dtype != np.uint8:  # defensive: IMREAD_COLOR already yields 8-bit
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
    return img
