"""The training skeleton shared by ``train gender`` and ``train identity``: options, run start (seed,
preprocessing, device), decoding the split, the data loader, the epoch loop with its history, and the run
folder's config with the model card. Each trainer keeps only what differs: its data layout and split, its
loss and sampler, its validation metrics and how it picks the threshold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch.utils.data import DataLoader, Dataset

from facecli.card import ModelCard
from facecli.preprocess import Preprocessing, margin_for_crop
from facecli.training.data import load_crops
from facecli.training.loop import FitConfig, fit, pick_device, seed_everything, worker_init
from facecli.training.models import DEFAULT_BACKBONE, backbone_norm
from facecli.training.run_dir import WEIGHTS, write_config, write_history


@dataclass
class TrainOptions:
    """Options every trainer has (see the CLI help for each)."""

    data: Path
    out: Path
    backbone: str = DEFAULT_BACKBONE
    pretrained: str = "auto"
    size: int = 112
    crop: float = 0.8
    detect: str = "none"
    align: str = "none"  # landmark template (facecli.align.TEMPLATES) or none; implies detect=auto
    zoom: float = 1.0  # with align: > 1 shows more context around the face
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    patience: int = 6
    val_fraction: float = 0.2
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    limit: int = 0  # quick trials: use at most this many training images (gender) or identities; 0 = all


@dataclass
class Run:
    """A started run: its preprocessing record, device and start time."""

    spec: Preprocessing
    device: torch.device
    t0: float


def preprocessing_for(opt: TrainOptions) -> Preprocessing:
    """The preprocessing record the model is trained with (and that export and inference will read)."""
    mean, std = backbone_norm(opt.backbone)
    return Preprocessing(size=opt.size, mean=mean, std=std, crop=opt.crop,
                         detect="auto" if opt.align != "none" else opt.detect,
                         face_margin=margin_for_crop(opt.crop), template=opt.align, zoom=opt.zoom)


def start_run(opt: TrainOptions, task: str, console: Console) -> Run:
    """Seed everything, pick the device (FacecliError for cuda without a GPU), create the run folder and say
    where training runs."""
    seed_everything(opt.seed)
    device = pick_device(opt.device)
    spec = preprocessing_for(opt)
    opt.out.mkdir(parents=True, exist_ok=True)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    console.print(f"[bold]{task}[/]: training on {device.type} ({where}), torch {torch.__version__}; "
                  f"run folder {opt.out}")
    return Run(spec, device, time.time())


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


def train_epochs(model: torch.nn.Module, criterion: torch.nn.Module, loader: DataLoader,
                 evaluate: Callable[[], dict[str, float]], select_key: str, opt: TrainOptions, run: Run,
                 console: Console, describe: Callable[[dict[str, Any]], str], plot_keys: list[str],
                 restart_epochs: int) -> tuple[list[dict[str, Any]], int]:
    """The epoch loop: fit with early stopping on ``select_key``, print ``describe(record)`` after each epoch,
    keep metrics.csv and curves.png up to date. Returns (history, best epoch)."""
    history: list[dict[str, Any]] = []

    def on_epoch(epoch: int, r: dict[str, Any]) -> None:
        history.append(r)
        console.print(f"epoch {epoch}: loss {r['train_loss']:.4f}  {describe(r)}  "
                      f"{r['train_images_per_s']:.0f} img/s  {'*' if r['best'] else ''}")
        write_history(opt.out, history, plot_keys)

    fc = FitConfig(epochs=opt.epochs, lr=opt.lr, weight_decay=opt.weight_decay, patience=opt.patience,
                   restart_epochs=max(1, restart_epochs), seed=opt.seed)
    _, best_epoch = fit(model, criterion, loader, evaluate, select_key, fc, opt.out, run.device, console, on_epoch)
    return history, best_epoch


def write_run(opt: TrainOptions, run: Run, card: ModelCard, *, best_epoch: int, data: dict[str, Any],
              model_kwargs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Write the run folder's config.json: the model card (validated), the best epoch, the data summary
    and every option. Returns it."""
    config = {
        **card.to_dict(),
        "model_kwargs": model_kwargs or {},
        "best_epoch": best_epoch,
        "weights": WEIGHTS,
        "data": data,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opt).items()},
        "train_time_s": round(time.time() - run.t0, 1),
        "device": run.device.type,
        **extra,
    }
    write_config(opt.out, config)
    return config

