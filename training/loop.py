"""The one trainer, :func:`fit`, shared by every recipe that trains (gender, identity, distillation).

AdamW, a per-batch schedule chosen by the recipe (cosine with warm restarts, or one cycle), a pluggable
per-batch ``step(batch) -> (loss, samples)``, early stopping on a validation metric, one history written to
the run folder (metrics.csv and curves.png) and the best weights saved atomically as safetensors.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from facecli.training.data import autocast
from facecli.training.run_dir import WEIGHTS, save_weights, write_history
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

if TYPE_CHECKING:
    from facecli.training.recipe import FitOptions


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


Step = Callable[[Any], tuple[torch.Tensor, int]]
Schedule = Callable[[torch.optim.Optimizer, int, int], Any]


def cosine_restarts(restart_epochs: int) -> Schedule:
    """Cosine annealing with warm restarts stepped per batch: the first cycle lasts ``restart_epochs``
    epochs and each next one twice as long, down to 1% of the learning rate (the trainers' schedule)."""

    def make(opt: torch.optim.Optimizer, steps_per_epoch: int, epochs: int) -> Any:
        lr = opt.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=max(1, restart_epochs) * steps_per_epoch, T_mult=2, eta_min=lr * 0.01)

    return make


def one_cycle(pct_start: float = 0.1) -> Schedule:
    """One cycle over the whole run (warm-up for ``pct_start`` of it, then cosine down): distillation's."""

    def make(opt: torch.optim.Optimizer, steps_per_epoch: int, epochs: int) -> Any:
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opt.param_groups[0]["lr"],
                                                   total_steps=max(1, epochs * steps_per_epoch), pct_start=pct_start)

    return make


@dataclass
class Fit:
    """What :func:`fit` is asked to do besides the options: how to pick the best epoch, the schedule, which
    parameters it trains, gradient clipping, early stopping, and what it prints and plots."""

    select_key: str
    schedule: Schedule
    params: list[nn.Parameter] | None = None  # default: the model's trainable parameters
    clip_grad: float | None = 5.0
    patience: int | None = None  # epochs without gain before stopping; None: never
    evaluate_first: bool = False  # score the starting weights as epoch 0 (and keep them if nothing beats them)
    describe: Callable[[dict[str, Any]], str] = lambda r: ""
    plot_keys: list[str] = field(default_factory=list)


def supervised_step(model: nn.Module, criterion: nn.Module, device: torch.device) -> Step:
    """The step of the gender and identity trainers: an (images, targets) batch, channels-last, bf16 autocast
    on CUDA, ``criterion(model(x), y)`` in float32."""
    criterion.to(device)

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, int]:
        x, y = batch
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        with autocast(device):
            out = model(x)
        return criterion(out.float(), y), len(y)

    return step


def _train_epoch(model: nn.Module, step: Step, loader: Iterable[Any], opt: torch.optim.Optimizer, sched: Any,
                 how: Fit, label: str, console: Console) -> tuple[float, int]:
    """One pass over ``loader``; returns (mean loss per sample, samples)."""
    params = [p for g in opt.param_groups for p in g["params"]]
    model.train()
    total, count = 0.0, 0
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("train", total=len(loader), loss=0.0)
        for batch in loader:
            loss, n = step(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if how.clip_grad is not None:
                nn.utils.clip_grad_norm_(params, how.clip_grad)
            opt.step()
            sched.step()
            total += float(loss.detach()) * n
            count += n
            bar.update(task, advance=1, loss=total / max(count, 1))
    return total / max(count, 1), count


def fit(model: nn.Module, step: Step, loader: Iterable[Any], evaluate: Callable[[], dict[str, float]],
        opt: FitOptions, how: Fit, device: torch.device, console: Console) -> tuple[list[dict[str, Any]], int]:
    """Train ``model`` with AdamW (``opt.lr``, ``opt.weight_decay``) under ``how.schedule`` for ``opt.epochs``
    epochs of ``step(batch) -> (loss, samples)`` over ``loader``, keeping the epoch with the highest
    ``evaluate()[how.select_key]``.

    The run folder ``opt.out`` gets the best weights (``model.safetensors``, run_dir.save_weights) and, after
    every epoch, metrics.csv and curves.png (run_dir.write_history); the model ends with its best weights.
    Returns (history: one record per epoch, best epoch).
    """
    model.to(device).to(memory_format=torch.channels_last)
    params = how.params if how.params is not None else [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=opt.lr, weight_decay=opt.weight_decay)
    sched = how.schedule(optimiser, max(1, len(loader)), opt.epochs)
    history: list[dict[str, Any]] = []
    best, best_epoch, stale = -float("inf"), 0, 0
    for epoch in range(0 if how.evaluate_first else 1, opt.epochs + 1):
        t0 = time.time()
        loss, count = _train_epoch(model, step, loader, optimiser, sched, how, f"epoch {epoch}/{opt.epochs}",
                                   console) if epoch else (float("nan"), 0)
        record = {"epoch": epoch, "train_loss": loss, "lr": optimiser.param_groups[0]["lr"],
                  "train_images_per_s": count / max(time.time() - t0, 1e-9), **evaluate()}
        record["best"] = improved = record.get(how.select_key, 0.0) > best
        if improved:
            best, best_epoch, stale = record[how.select_key], epoch, 0
            save_weights(model, opt.out / WEIGHTS)
        else:
            stale += 1
        history.append(record)
        console.print(f"epoch {epoch}: loss {loss:.4f}  {how.describe(record)}  "
                      f"{record['train_images_per_s']:.0f} img/s  {'*' if improved else ''}")
        write_history(opt.out, history, how.plot_keys)
        if how.patience is not None and stale >= how.patience:
            console.print(f"early stop: no gain in {how.select_key} for {how.patience} epochs")
            break
    if (opt.out / WEIGHTS).is_file() and best > -float("inf"):
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(opt.out / WEIGHTS)))
    return history, best_epoch
