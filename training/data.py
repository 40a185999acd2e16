"""Datasets: images decoded and cropped once into memory, then augmented per sample."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from facecli.face.preprocess import Preprocessing, flip_average, to_tensor
from facecli.pipeline import iter_prepared


def load_crops(
    paths: Sequence[Path],
    spec: Preprocessing,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[int], dict[int, str]]:
    """Decode and crop every image once with the shared inference geometry.

    Returns (crops (N, S, S, 3) uint8 BGR of the readable images, their indices in ``paths``,
    failures {index: error}). The largest face is used when ``spec.detect`` is "auto".
    """
    out = np.empty((len(paths), spec.size, spec.size, 3), np.uint8)
    kept: list[int] = []
    failures: dict[int, str] = {}
    for crops, fails, done in iter_prepared(paths, spec, tensors=False):
        failures.update(fails)
        for c in crops:
            if c.face == 0:
                out[len(kept)] = c.pixels
                kept.append(c.index)
        if on_progress:
            on_progress(done)
    return out[: len(kept)], kept, failures


class CropDataset(Dataset):
    """(tensor, target) pairs from in-memory crops, augmented by an albumentations ``transform``."""

    def __init__(self, crops: np.ndarray, targets: Sequence[int], spec: Preprocessing, transform=None):
        self.crops = crops
        self.targets = np.asarray(targets, dtype=np.int64)
        self.spec = spec
        self.transform = transform

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.crops[i]
        if self.transform is not None:
            img = self.transform(image=img)["image"]
        return torch.from_numpy(to_tensor(img, self.spec)[0]), int(self.targets[i])


def predict_batches(
    model: torch.nn.Module, crops: np.ndarray, spec: Preprocessing, device: torch.device, batch_size: int = 128
) -> np.ndarray:
    """Run ``model`` (in eval mode, no augmentation) over in-memory crops and return stacked outputs."""
    model.eval()
    outs = []

    def forward(b: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(b)).to(device).contiguous(memory_format=torch.channels_last)
        with autocast(device):
            return model(t).float().cpu().numpy()

    with torch.inference_mode():
        for s in range(0, len(crops), batch_size):
            x = to_tensor(crops[s : s + batch_size], spec)
            # an identity model recorded with flip embeds as inference does (one source: flip_average)
            outs.append(torch.from_numpy(flip_average(forward, x) if spec.flip else forward(x)))
    return torch.cat(outs).numpy() if outs else np.zeros((0,), np.float32)


def autocast(device: torch.device):
    """bf16 autocast on CUDA (mixed precision); a no-op context on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    import contextlib

    return contextlib.nullcontext()
