"""A training run folder: best weights (safetensors), config JSON, per-epoch metrics CSV, curve PNG."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from facecli.atomic import write_json, write_with
from facecli.errors import FacecliError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
HISTORY_CSV = "metrics.csv"
CURVES_PNG = "curves.png"
RUN_FORMAT = 1


def save_weights(model: torch.nn.Module, path: str | os.PathLike[str]) -> None:
    """Save a state dict as safetensors, atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_with(path, lambda tmp: save_file(state, str(tmp)))


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Write the run's config JSON (everything needed to rebuild, preprocess and judge the model)."""
    write_json(run_dir / CONFIG, {"facecli_run": RUN_FORMAT, **config})


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run folder's config; raise FacecliError when the folder is not a finished facecli run."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG
    if not run_dir.is_dir():
        raise FacecliError(f"run folder not found: {run_dir}")
    if not cfg_path.is_file() or not (run_dir / WEIGHTS).is_file():
        raise FacecliError(f"{run_dir} is not a facecli run folder (needs {CONFIG} and {WEIGHTS})")
    try:
        cfg = json.loads(cfg_path.read_text())
    except ValueError:
        raise FacecliError(f"{cfg_path} is not valid JSON") from None
    if cfg.get("facecli_run") != RUN_FORMAT:
        raise FacecliError(f"{cfg_path} is not a facecli run config")
    return cfg


def write_history(run_dir: Path, history: list[dict[str, Any]], keys: list[str]) -> None:
    """Write per-epoch metrics as CSV and plot ``keys`` (loss and validation metrics) against epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(history)
    write_with(run_dir / HISTORY_CSV, lambda tmp: df.to_csv(tmp, index=False))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(df["epoch"], df["train_loss"], marker="o")
    axes[0].set(title="training loss", xlabel="epoch")
    plotted = [k for k in keys if k in df]
    for key in plotted:
        axes[1].plot(df["epoch"], df[key], marker="o", label=key)
    axes[1].set(title="validation", xlabel="epoch")
    if plotted:
        axes[1].legend()
    fig.tight_layout()
    write_with(run_dir / CURVES_PNG, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
