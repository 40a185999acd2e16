"""What ``train gender`` and ``train identity`` share on top of the recipe frame (facecli.training.recipe):
their options, the preprocessing record (the backbone's defaults, overridden by what the user gave),
decoding the split, the data loader and the trainer's settings. Each trainer keeps only what differs: its
data layout and split, its loss and sampler, its validation metrics and how it picks the threshold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from facecli.training.data import load_crops
from facecli.training.loop import Fit, cosine_restarts, worker_init
from facecli.training.models import DEFAULT_BACKBONE, backbone_preprocessing
from facecli.training.recipe import FitOptions, Run
from rich.console import Console
from torch.utils.data import DataLoader, Dataset

from facecli.face.preprocess import Preprocessing, margin_for_crop


@dataclass
class TrainOptions(FitOptions):
    """Options every trainer has (see the CLI help for each). The preprocessing fields left at None take
    the backbone's defaults (:func:`facecli.training.models.backbone_preprocessing`)."""

    backbone: str = DEFAULT_BACKBONE
    pretrained: str = "auto"
    size: int | None = None
    crop: float | None = None
    detect: str | None = None
    align: str | None = None  # landmark template (facecli.face.align.TEMPLATES) or none; implies detect=auto
    zoom: float | None = None  # with align: > 1 shows more context around the face
    patience: int = 6
    workers: int = 2


def preprocessing_for(opt: TrainOptions) -> Preprocessing:
    """The preprocessing record the model is trained with (and that export and inference will read): the
    backbone's defaults, with the size, crop, detection, alignment and zoom the user gave in their place."""
    given: dict[str, Any] = {k: getattr(opt, k) for k in ("size", "crop", "detect", "zoom")
                             if getattr(opt, k) is not None}
    if opt.align is not None:
        given["template"] = opt.align
    if opt.crop is not None:
        given["face_margin"] = margin_for_crop(opt.crop)
    spec = backbone_preprocessing(opt.backbone).replace(**given)
    return spec.replace(detect="auto") if spec.template != "none" and spec.detect == "none" else spec


def load_split(run: Run, train_paths: Sequence[Path], val_paths: Sequence[Path], console: Console):
    """Decode and cut both sides of the split. Returns (train crops, kept train indices, val crops, kept val
    indices, unreadable count)."""
    t = time.time()
    train_x, keep, fails = load_crops(list(train_paths), run.spec)
    val_x, vkeep, vfails = load_crops(list(val_paths), run.spec)
    console.print(f"decoded and cropped in {time.time() - t:.1f}s; unreadable: {len(fails) + len(vfails)}")
    return train_x, keep, val_x, vkeep, len(fails) + len(vfails)


def make_loader(ds: Dataset, opt: TrainOptions, *, sampler: Any = None, batch_sampler: Any = None) -> DataLoader:
    """A seeded DataLoader: shuffled batches of ``opt.batch_size`` (or the given sampler / batch sampler),
    workers reseeded so augmentations repeat run to run."""
    gen = torch.Generator().manual_seed(opt.seed)
    common = dict(num_workers=opt.workers, worker_init_fn=worker_init, persistent_workers=opt.workers > 0,
                  generator=gen)
    if batch_sampler is not None:
        return DataLoader(ds, batch_sampler=batch_sampler, **common)
    return DataLoader(ds, batch_size=opt.batch_size, shuffle=sampler is None, sampler=sampler,
                      drop_last=len(ds) > opt.batch_size, **common)


def trainer_fit(opt: TrainOptions, select_key: str, restart_epochs: int, params: list[torch.nn.Parameter],
                describe: Callable[[dict[str, Any]], str], plot_keys: list[str]) -> Fit:
    """The trainers' settings for :func:`facecli.training.loop.fit`: cosine schedule with warm restarts
    (first cycle ``restart_epochs``), gradient norm clipped at 5, early stopping after ``opt.patience``."""
    return Fit(select_key=select_key, schedule=cosine_restarts(restart_epochs), params=params, clip_grad=5.0,
               patience=opt.patience, describe=describe, plot_keys=plot_keys)


def trainable(*modules: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters to optimise: those of the model and of a loss with weights (ArcFace's class centres)."""
    return [p for m in modules for p in m.parameters() if p.requires_grad]
