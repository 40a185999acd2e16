"""Odd files: handled correctly or reported, never a crash."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from facecli.decode import DecodeError, read_image


def test_grayscale_becomes_three_channels(tmp_path):
    p = tmp_path / "g.png"
    cv2.imwrite(str(p), np.full((20, 30), 128, np.uint8))
    img = read_image(p)
    assert img.shape == (20, 30, 3) and img.dtype == np.uint8


def test_sixteen_bit_is_scaled_to_eight_bit(tmp_path):
    p = tmp_path / "deep.png"
    cv2.imwrite(str(p), np.full((10, 10, 3), 65535, np.uint16))
    img = read_image(p)
    assert img.dtype == np.uint8 and img.max() == 255


def test_rgba_drops_alpha(tmp_path):
    p = tmp_path / "a.png"
    cv2.imwrite(str(p), np.dstack([np.full((8, 8, 3), 50, np.uint8), np.zeros((8, 8), np.uint8)]))
    img = read_image(p)
    assert img.shape == (8, 8, 3) and int(img[0, 0, 0]) == 50


def test_cmyk_jpeg_is_converted(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("RGB", (16, 16), (255, 0, 0)).convert("CMYK").save(p)
    img = read_image(p)
    assert img.shape == (16, 16, 3)
    b, g, r = img[8, 8].astype(int)
    assert r > 200 and g < 60 and b < 60  # still red, in BGR order


def test_exif_orientation_is_applied(tmp_path):
    p = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.new("RGB", (40, 20), (0, 128, 0)).save(p, exif=exif)
    assert read_image(p).shape[:2] == (40, 20)  # stored 40 wide x 20 high, shown 20 wide x 40 high


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"hello, not an image", "not a decodable image")])
def test_unreadable_files_raise_decode_error(tmp_path, content, message):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(DecodeError, match=message):
        read_image(p)


def test_missing_file_raises_decode_error(tmp_path):
    with pytest.raises(DecodeError, match="cannot read"):
        read_image(tmp_path / "nope.jpg")


def test_truncated_jpeg_is_decoded_or_reported(tmp_path):
    p = tmp_path / "cut.jpg"
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    p.write_bytes(buf.tobytes()[: len(buf) // 2])
    try:
        img = read_image(p)
    except DecodeError:
        return
    assert img.shape == (64, 64, 3)


def test_very_large_image(tmp_path):
    from facecli.face.preprocess import Preprocessing
    from facecli.pipeline import prepare_image

    p = tmp_path / "huge.png"
    cv2.imwrite(str(p), np.zeros((8000, 8000, 3), np.uint8))
    crops = prepare_image(p, 0, Preprocessing(size=32))
    assert crops[0].pixels.shape == (32, 32, 3)
