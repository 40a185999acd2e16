"""Restoration before detection: impulse noise and rain streaks are removed, clean images are untouched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from facecli.face.preprocess import Preprocessing
from facecli.restore import DENOISED, DERAINED, RESTORE_OFF, UNTOUCHED, assess, restore
from tests.conftest import pattern_image, write


def photo() -> np.ndarray:
    """A natural 256 px BGR photo (scikit-image's astronaut)."""
    return cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (256, 256), interpolation=cv2.INTER_AREA)


def salt_and_pepper(img: np.ndarray, share: float = 0.12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = img.copy()
    hit = rng.random(img.shape[:2]) < share
    out[hit] = rng.choice(np.array([0, 255], np.uint8), size=(int(hit.sum()), 1))
    return out


def rain(img: np.ndarray, streaks: int = 900, seed: int = 0) -> np.ndarray:
    """Thin bright streaks falling slightly slanted over a darkened image, like FACECOM's rainy copies."""
    rng = np.random.default_rng(seed)
    layer = np.zeros(img.shape[:2], np.uint8)
    for _ in range(streaks):
        x, y = (int(v) for v in rng.integers(0, img.shape[1], 2))
        cv2.line(layer, (x, y), (x + 3, y + 9), 90, 1)
    dark = cv2.convertScaleAbs(img, alpha=0.79)
    return cv2.add(dark, cv2.merge([layer] * 3))


def test_impulse_noise_is_detected_and_removed():
    clean = photo()
    noisy = salt_and_pepper(clean)
    fixed, what = restore(noisy)
    assert what == DENOISED
    assert cv2.PSNR(fixed, clean) > cv2.PSNR(noisy, clean) + 10


def test_rain_streaks_are_detected_and_removed():
    clean = photo()
    rainy = rain(clean)
    assert assess(rainy).slant > 0.5
    fixed, what = restore(rainy)
    assert what == DERAINED
    assert cv2.PSNR(fixed, clean) > cv2.PSNR(rainy, clean) + 3


@pytest.mark.parametrize("make", [photo, lambda: pattern_image(3, 128), lambda: cv2.GaussianBlur(photo(), (9, 9), 3),
                                  lambda: cv2.convertScaleAbs(photo(), alpha=0.3),
                                  lambda: np.full((100, 80, 3), 255, np.uint8), lambda: pattern_image(1, 20)])
def test_clean_and_other_degradations_are_left_bit_identical(make):
    img = make()
    before = img.copy()
    out, what = restore(img)
    assert what == UNTOUCHED
    assert out is img and np.array_equal(out, before)


def test_restore_none_does_not_even_assess():
    noisy = salt_and_pepper(photo())
    out, what = restore(noisy, "none")
    assert what == RESTORE_OFF and out is noisy


def test_the_preprocessing_record_carries_restore_and_old_records_read_auto():
    assert Preprocessing().restore == "auto"
    assert Preprocessing.from_dict({"size": 112}).restore == "auto"
    assert Preprocessing.from_dict(Preprocessing(restore="none").to_dict()).restore == "none"
    with pytest.raises(ValueError, match="restore"):
        Preprocessing(restore="sometimes").validate()


def test_classify_rows_say_what_was_restored(cli, tmp_path):
    folder = tmp_path / "photos"
    write(folder / "clean.png", photo())
    write(folder / "noisy.png", salt_and_pepper(photo()))
    write(folder / "rainy.png", rain(photo()))
    import pandas as pd

    r = cli("classify", folder, "--out", tmp_path / "auto.csv")
    assert r.code == 0, r.err
    rows = pd.read_csv(tmp_path / "auto.csv", keep_default_na=False).groupby("path")["restored"].first().to_dict()
    assert rows == {"clean.png": "untouched", "noisy.png": "denoise", "rainy.png": "derain"}
    r = cli("classify", folder, "--out", tmp_path / "none.csv", "--restore", "none")
    assert r.code == 0, r.err
    assert set(pd.read_csv(tmp_path / "none.csv")["restored"]) == {"off"}
    r = cli("classify", folder, "--out", tmp_path / "bad.csv", "--restore", "sometimes")
    assert r.code == 2 and "restore" in r.err
