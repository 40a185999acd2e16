"""What every training recipe shares: its options dataclass (and the command line built from it), the run
start (seed, device, run folder) and the run folder's config written through the model card.

A recipe is a small config-driven job: a dataclass of options and a function taking it, run from the shell
with ``python -m facecli.training.<recipe>`` through :func:`recipe_main`, which builds the argparse parser
from the dataclass's fields (fields without a default are positional; ``metadata={"help": ...}`` documents
a field, ``metadata={"required": True}`` makes an option mandatory).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from facecli.training.loop import pick_device, seed_everything
from facecli.training.run_dir import WEIGHTS, write_config
from rich.console import Console

from facecli.card import ModelCard
from facecli.errors import FacecliError
from facecli.face.preprocess import Preprocessing


@dataclass
class RecipeOptions:
    """Options of every recipe: where the data is, the run folder, the hold-out, the seed and the device."""

    data: Path = field(metadata={"help": "data folder"})
    out: Path = field(metadata={"help": "run folder to write"})
    val_fraction: float = 0.2
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda


@dataclass
class FitOptions(RecipeOptions):
    """Options of the recipes that run the trainer (:func:`facecli.training.loop.fit`)."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    limit: int = 0  # quick trials: use at most this many training images (gender) or identities; 0 = all


@dataclass
class Run:
    """A started run: its preprocessing record, device and start time."""

    spec: Preprocessing
    device: torch.device
    t0: float


def start_run(opt: RecipeOptions, task: str, console: Console, spec: Preprocessing) -> Run:
    """Seed everything, pick the device (FacecliError for cuda without a GPU), create the run folder and say
    where training runs."""
    seed_everything(opt.seed)
    device = pick_device(opt.device)
    opt.out.mkdir(parents=True, exist_ok=True)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    console.print(f"[bold]{task}[/]: training on {device.type} ({where}), torch {torch.__version__}; "
                  f"run folder {opt.out}")
    return Run(spec, device, time.time())


def write_run(opt: Any, run: Run, card: ModelCard, *, best_epoch: int | None, data: dict[str, Any],
              model_kwargs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Write the run folder's config.json: the model card (validated when it was made), the best epoch (None:
    a recipe without epochs), the data summary and every option. Returns it."""
    config = {
        **card.to_dict(),
        "model_kwargs": model_kwargs or {},
        **({} if best_epoch is None else {"best_epoch": best_epoch}),
        "weights": WEIGHTS,
        "data": data,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opt).items()},
        "train_time_s": round(time.time() - run.t0, 1),
        "device": run.device.type,
        **extra,
    }
    write_config(opt.out, config)
    return config


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and each option's default."""


def _arg_type(hint: Any) -> Any:
    """The argparse ``type`` of a dataclass field's annotation (``X | None`` -> X)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def options_parser(options: type, doc: str | None) -> argparse.ArgumentParser:
    """An argparse parser for the dataclass ``options``: one argument per field (see the module docstring)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=_HelpFormatter)
    hints = typing.get_type_hints(options)
    for f in dataclasses.fields(options):
        kind, text = _arg_type(hints[f.name]), f.metadata.get("help") or "default: %(default)s"
        flag = f"--{f.name.replace('_', '-')}"
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            ap.add_argument(f.name, type=kind, help=text)
        elif kind is bool:
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=text)
        else:
            ap.add_argument(flag, type=kind, default=f.default, help=text, required=f.metadata.get("required", False))
    return ap


def recipe_main(options: type, job: Callable[[Any], Any], doc: str | None,
                argv: Sequence[str] | None = None) -> Any:
    """Parse the command line into ``options`` (a dataclass) and run ``job`` on it; returns what it returns. A
    :class:`FacecliError` (bad input) ends the run with its one line on stderr and exit status 1."""
    args = options(**vars(options_parser(options, doc).parse_args(argv)))
    try:
        return job(args)
    except FacecliError as exc:
        raise SystemExit(f"error: {exc}") from None
