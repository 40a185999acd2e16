"""The training loop shared by gender and identity training.

AdamW, cosine schedule with warm restarts (stepped per batch), bf16 mixed precision on CUDA,
channels-last, early stopping on a validation metric, best weights saved atomically as safetensors.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from facecli.training.data import autocast
from facecli.training.run_dir import WEIGHTS, save_weights


@dataclass
class FitConfig:
    """Optimisation settings. ``restart_epochs`` is the first cosine cycle length (it doubles after)."""

    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 0.05
    restart_epochs: int = 10
    patience: int = 5
    seed: int = 0


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def worker_init(worker_id: int) -> None:
    """DataLoader worker seeding: derived from the torch seed (itself drawn from the loader's seeded
    generator) so runs repeat. Reseeds the dataset's albumentations pipeline too, which keeps its own
    generators."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    transform = getattr(info.dataset, "transform", None) if info is not None else None
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed)


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when torch sees a GPU, else the CPU; 'cuda' without a GPU and unknown names raise a
    one-line FacecliError."""
    from facecli.errors import FacecliError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise FacecliError(f"--device cuda: torch {torch.__version__} sees no CUDA GPU; use --device cpu or auto")
        return torch.device("cuda")
    raise FacecliError(f"device must be one of auto, cpu, cuda, not {name!r}")


def fit(
    model: nn.Module,
    criterion: nn.Module,
    loader: torch.utils.data.DataLoader,
    evaluate: Callable[[], dict[str, float]],
    select_key: str,
    cfg: FitConfig,
    run_dir: Path,
    device: torch.device,
    console: Console,
    on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Train ``model`` and keep its best epoch by ``evaluate()[select_key]`` (higher is better).

    Returns (history, best epoch). The best weights are in ``run_dir/model.safetensors``; ``on_epoch``
    is called after each epoch with its record (to print a table row, save history).
    """
    model.to(device).to(memory_format=torch.channels_last)
    criterion.to(device)
    params = [p for p in list(model.parameters()) + list(criterion.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(1, len(loader))
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=max(1, cfg.restart_epochs) * steps, T_mult=2, eta_min=cfg.lr * 0.01
    )
    history: list[dict[str, Any]] = []
    best, best_epoch, stale = -float("inf"), 0, 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0, total, count = time.time(), 0.0, 0
        with Progress(
            TextColumn(f"epoch {epoch}/{cfg.epochs}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(),
            console=console, transient=True,
        ) as bar:
            task = bar.add_task("train", total=steps, loss=0.0)
            for x, y in loader:
                x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                y = y.to(device, non_blocking=True)
                with autocast(device):
                    out = model(x)
                loss = criterion(out.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, 5.0)
                opt.step()
                sched.step()
                total += loss.item() * len(y)
                count += len(y)
                bar.update(task, advance=1, loss=total / max(count, 1))
        train_time = time.time() - t0
        metrics = evaluate()
        record = {"epoch": epoch, "train_loss": total / max(count, 1), "lr": opt.param_groups[0]["lr"],
                  "train_images_per_s": count / max(train_time, 1e-9), **metrics}
        score = metrics[select_key]
        improved = score > best
        if improved:
            best, best_epoch, stale = score, epoch, 0
            save_weights(model, run_dir / WEIGHTS)
        else:
            stale += 1
        record["best"] = improved
        history.append(record)
        if on_epoch:
            on_epoch(epoch, record)
        if stale >= cfg.patience:
            console.print(f"early stop: no gain in {select_key} for {cfg.patience} epochs")
            break
    return history, best_epoch
