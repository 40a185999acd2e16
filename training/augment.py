"""Augmentations (albumentations) that mimic FACECOM's degradations plus the usual geometric and colour ones.

They run on the model's square crop (already cut by :func:`facecli.face.preprocess.crop_face`), so training
sees exactly the geometry inference sees, then randomly perturbed.
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import numpy as np


class SunGlare(A.ImageOnlyTransform):
    """Strong sun glare: a soft white disc that washes out most of the face, as in FACECOM's ``sunny`` images.

    albumentations' ``RandomSunFlare`` blends its flare at partial opacity and never saturates the face
    the way FACECOM's glare does. Here the white opacity is ``strength * (1 - r / radius)`` clipped to
    [0, 1] and raised to ``falloff``, with ``r`` the distance to a centre drawn in ``centre_roi`` (x0, y0,
    x1, y1 as fractions of width and height) and ``radius`` a fraction of the longer side.
    """

    def __init__(self, centre_roi: tuple[float, float, float, float] = (0.3, 0.15, 0.7, 0.5),
                 radius: tuple[float, float] = (0.5, 1.1), strength: tuple[float, float] = (1.0, 1.7),
                 falloff: tuple[float, float] = (0.5, 1.5), p: float = 0.5):
        super().__init__(p=p)
        self.centre_roi, self.radius, self.strength, self.falloff = centre_roi, radius, strength, falloff

    def get_params(self) -> dict[str, Any]:
        """Draw the glare's centre, radius, strength and falloff."""
        x0, y0, x1, y1 = self.centre_roi
        u = self.py_random.uniform
        return {"cx": u(x0, x1), "cy": u(y0, y1), "radius": u(*self.radius), "strength": u(*self.strength),
                "falloff": u(*self.falloff)}

    def apply(self, img: np.ndarray, cx: float, cy: float, radius: float, strength: float, falloff: float,
              **params: Any) -> np.ndarray:
        """Blend ``img`` (uint8) towards white by the glare's opacity map."""
        h, w = img.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r = np.sqrt((xx - cx * w) ** 2 + (yy - cy * h) ** 2) / (radius * max(h, w))
        alpha = np.clip(strength * (1 - r), 0, 1) ** falloff
        alpha = alpha[..., None] if img.ndim == 3 else alpha
        out = img.astype(np.float32) * (1 - alpha) + 255.0 * alpha
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("centre_roi", "radius", "strength", "falloff")


def degradations(size: int, strong_glare: bool = False) -> A.OneOf:
    """One of: blur, fog, rain, low light, noise, sun glare, down-scaling (FACECOM's seven kinds).

    Sun glare is albumentations' ``RandomSunFlare``; with ``strong_glare`` half of the glare draws are
    :class:`SunGlare` instead, which washes the face out as FACECOM's ``sunny`` images do.
    """
    flare = A.RandomSunFlare(flare_roi=(0, 0, 1, 0.6), src_radius=max(8, size // 3), num_flare_circles_range=(3, 6),
                             p=1)
    return A.OneOf(
        [
            A.OneOf([A.GaussianBlur(sigma_limit=(0.8, 3.0), p=1), A.MotionBlur(blur_limit=(3, 9), p=1)], p=1),
            A.RandomFog(fog_coef_range=(0.3, 0.8), alpha_coef=0.1, p=1),
            A.RandomRain(slant_range=(-15, 15), drop_length=max(4, size // 10), blur_value=3,
                         brightness_coefficient=0.8, p=1),
            A.OneOf(
                [A.RandomBrightnessContrast(brightness_limit=(-0.6, -0.25), contrast_limit=(-0.4, 0.0), p=1),
                 A.RandomGamma(gamma_limit=(180, 350), p=1)],
                p=1,
            ),
            A.OneOf([A.GaussNoise(std_range=(0.05, 0.25), p=1), A.ISONoise(intensity=(0.2, 0.6), p=1)], p=1),
            A.OneOf([flare, SunGlare(p=1)], p=1) if strong_glare else flare,
            A.Downscale(scale_range=(0.2, 0.5), p=1),
        ],
        p=1,
    )


def train_transform(size: int, degrade_p: float = 0.5, strength: float = 1.0, strong_glare: bool = False,
                    seed: int | None = None) -> A.Compose:
    """Training augmentation for ``size``-pixel square crops.

    Flips, small shifts/scales/rotations, colour jitter, one FACECOM-like degradation with probability
    ``degrade_p`` and coarse dropout. ``strength`` scales the geometric jitter (0 turns it off);
    ``strong_glare`` adds :class:`SunGlare` to the degradations. ``seed`` fixes the random draws
    (albumentations 2 keeps its own generators and ignores ``np.random.seed``); DataLoader workers
    reseed it per worker (see ``training.loop.worker_init``).
    """
    s = strength
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(scale=(1 - 0.1 * s, 1 + 0.1 * s), translate_percent=(-0.06 * s, 0.06 * s),
                     rotate=(-12 * s, 12 * s), border_mode=1, p=0.7 if s > 0 else 0),
            A.ColorJitter(brightness=0.25, contrast=0.25, saturation=0.25, hue=0.04, p=0.5),
            A.ToGray(p=0.05),
            A.OneOf([degradations(size, strong_glare)], p=degrade_p),
            A.CoarseDropout(num_holes_range=(1, 3), hole_height_range=(0.08, 0.2),
                            hole_width_range=(0.08, 0.2), fill=0, p=0.25),
        ],
        seed=seed,
    )
