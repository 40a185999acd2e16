"""Assess what is wrong with a decoded image and restore what can be restored, before detection.

The pipeline runs decode -> :func:`assess` -> :func:`restore` -> detect and align -> model for every command
(classify, gallery, match, evaluate, training), so a face model sees the same restored image wherever it
runs. Two degradations are restored, each with the filter measured to help recognition most:

- **impulse noise** (salt-and-pepper pixels, FACECOM's "noisy"): a 5x5 median filter per channel;
- **rain streaks** (thin, slanted, bright streaks over a darkened image, FACECOM's "rainy"): a grey
  opening with a 1x3 horizontal line (removes anything bright and narrower than 3 px: the streaks), then
  the measured global darkening undone.

Everything else (blur, fog, low light, glare, down-scaling) is left alone: no classical filter tried helped
a face model there, and the face models were trained on those kinds. A clean image is returned unchanged,
the same array, bit for bit. The rules were measured on FACECOM's training split (15,408 images of Task B:
no clean, blurred, foggy, low-light, resized or sunny image triggers either restoration; 1,837 of 1,837
noisy and 1,836 of 1,837 rainy images are restored); see the model card for what restoration changes.

The assessment works on the grey image at most :data:`ASSESS_SIDE` pixels square (a centred window of
larger images) and costs about 1 ms for a 250 px FACECOM image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# restored column values
RESTORE_OFF = "off"  # --restore none: not assessed
UNTOUCHED = "untouched"  # assessed, nothing to restore (not "none": that is the --restore value that turns it off)
DENOISED = "denoise"  # impulse noise removed
DERAINED = "derain"  # rain streaks removed
RESTORE_MODES = ("auto", "none")

ASSESS_SIDE = 512  # the assessment looks at a centred window at most this many pixels square
IMPULSE_LEVEL = 30  # grey levels a pixel must differ from its 3x3 median to count as an impulse
IMPULSE_SHARE = 0.05  # share of impulse pixels that marks impulse noise (clean photos: at most 0.006)
STREAK_LEVEL = 20  # grey levels a pixel must stand above its 1x3 opening to count as part of a streak
STREAK_SHARE = 0.05  # share of streak pixels that marks rain (clean photos: at most 0.036)
STREAK_SLANT = 0.5  # slant: high-pass correlation along (3, 1) minus along (3, -1); rain 0.35-0.84, else < 0.49
NOISE_MAX_SLANT = 0.4  # impulse noise has no slant; rain's streaks also look like impulses
DENOISE_KERNEL = 5  # median size (3 lifts noisy FACECOM-protocol top-1 0.952 -> 0.992, 5 -> 0.996)
RAIN_LINE = np.ones((1, 3), np.uint8)  # the opening's structuring element (1x5: 0.998 / 0.974 cross-photo)
RAIN_GAIN = 0.79  # FACECOM's rain darkens the whole image by this factor (median of clean/rainy ratios)


@dataclass(frozen=True)
class Assessment:
    """What is wrong with an image, as cheap measurements of its grey levels.

    impulse: share of pixels far (> IMPULSE_LEVEL) from their 3x3 median.
    streaks: share of pixels that stand out (> STREAK_LEVEL) above a 1x3 horizontal opening: thin bright lines.
    slant: how much more the high-pass image correlates with itself along one diagonal than the other
        (rain falls slanted; noise, edges and texture have no preferred diagonal).
    saturated: share of pixels at 250 or more in grey (glare, over-exposure).
    """

    impulse: float
    streaks: float
    slant: float
    saturated: float

    @property
    def kind(self) -> str:
        """What :func:`restore` would do: DERAINED, DENOISED or UNTOUCHED."""
        if self.slant > STREAK_SLANT and self.streaks > STREAK_SHARE:
            return DERAINED
        if self.impulse > IMPULSE_SHARE and self.slant < NOISE_MAX_SLANT:
            return DENOISED
        return UNTOUCHED


def _grey_window(bgr: np.ndarray) -> np.ndarray:
    g = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    h, w = g.shape
    y0, x0 = max(0, (h - ASSESS_SIDE) // 2), max(0, (w - ASSESS_SIDE) // 2)
    return g[y0 : y0 + ASSESS_SIDE, x0 : x0 + ASSESS_SIDE]


def _shifted_correlation(hp: np.ndarray, dy: int, dx: int) -> float:
    m = 4
    a = hp[m:-m, m:-m]
    b = hp[m + dy : hp.shape[0] - m + dy, m + dx : hp.shape[1] - m + dx]
    den = float(a.std() * b.std())
    return float((a * b).mean() / den) if den > 1e-6 else 0.0


def assess(bgr: np.ndarray, slant: bool = True) -> Assessment:
    """Measure impulse noise, thin bright streaks, their slant and saturation of a BGR (or grey) uint8 image.
    ``slant`` False skips the slant (reported as 0.0) where neither streaks nor impulses are many enough for it
    to matter to :attr:`Assessment.kind`: the same kind, for a third of the cost on most photos."""
    g = _grey_window(bgr)
    if min(g.shape) < 24:  # too small to tell noise from detail
        return Assessment(0.0, 0.0, 0.0, float((g >= 250).mean()) if g.size else 0.0)
    impulse = float((cv2.absdiff(g, cv2.medianBlur(g, 3)) > IMPULSE_LEVEL).mean())
    tophat = cv2.subtract(g, cv2.morphologyEx(g, cv2.MORPH_OPEN, RAIN_LINE))
    streaks = float((tophat > STREAK_LEVEL).mean())
    saturated = float((g >= 250).mean())
    if not slant and streaks <= STREAK_SHARE and impulse <= IMPULSE_SHARE:
        return Assessment(impulse, streaks, 0.0, saturated)
    hp = (g.astype(np.float32) - cv2.blur(g, (5, 5)).astype(np.float32))[8:-8, 8:-8]
    return Assessment(impulse, streaks, _shifted_correlation(hp, 3, 1) - _shifted_correlation(hp, 3, -1), saturated)


def denoise(bgr: np.ndarray) -> np.ndarray:
    """Remove impulse noise: a DENOISE_KERNEL median per channel."""
    return cv2.medianBlur(bgr, DENOISE_KERNEL)


def derain(bgr: np.ndarray) -> np.ndarray:
    """Remove thin bright streaks (an opening with RAIN_LINE per channel) and undo the rain's darkening."""
    opened = cv2.morphologyEx(bgr, cv2.MORPH_OPEN, RAIN_LINE)
    return cv2.convertScaleAbs(opened, alpha=1.0 / RAIN_GAIN)


def restore(bgr: np.ndarray, mode: str = "auto") -> tuple[np.ndarray, str]:
    """The restored image and what was done (the ``restored`` column): "denoise", "derain", "untouched"
    (nothing needed: the same array is returned) or "off" (``mode`` "none": not even assessed)."""
    if mode == "none":
        return bgr, RESTORE_OFF
    kind = assess(bgr, slant=False).kind
    if kind == DENOISED:
        return denoise(bgr), kind
    if kind == DERAINED:
        return derain(bgr), kind
    return bgr, UNTOUCHED
