"""Reports: rich summary tables, metric JSON and matplotlib plots (confusion matrix, ROC, PR, histograms)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from facecli.atomic import write_with


def fmt(v: Any, digits: int = 4) -> str:
    """Numbers for tables: 4 decimals, 'n/a' for NaN/None."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _plain(v: Any) -> Any:
    """numpy scalars -> Python numbers; whole floats stay floats (they are rates)."""
    return v.item() if hasattr(v, "item") else v


def metric_table(title: str, rows: Sequence[tuple[str, Any]]) -> Table:
    """A two-column table of metric name and value."""
    t = Table(title=title, show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(k, fmt(v))
    return t


def frame_table(title: str, df, digits: int = 4) -> Table:
    """A rich table from a pandas DataFrame (index included when named)."""
    t = Table(title=title)
    cols = ([df.index.name] if df.index.name else []) + [str(c) for c in df.columns]
    for c in cols:
        t.add_column(c, justify="right")
    for idx, *values in df.itertuples(index=True, name=None):
        cells = ([str(idx)] if df.index.name else []) + [fmt(_plain(v), digits) for v in values]
        t.add_row(*cells)
    return t


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_fig(fig, path: Path) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    _plt().close(fig)


def gender_plots(y_true: np.ndarray, p_female: np.ndarray, threshold: float, out_dir: Path) -> list[Path]:
    """Confusion matrix, ROC and precision-recall curve PNGs for gender evaluation."""
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    plt = _plt()
    written = []
    fig, ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(y_true, (p_female >= threshold).astype(int), labels=[0, 1],
                                            display_labels=["male", "female"], ax=ax, colorbar=False)
    ax.set_title(f"confusion matrix (threshold {threshold:.3f})")
    save_fig(fig, out_dir / "confusion_matrix.png")
    written.append(out_dir / "confusion_matrix.png")
    if len(np.unique(y_true)) == 2:
        fig, ax = plt.subplots(figsize=(4, 4))
        RocCurveDisplay.from_predictions(y_true, p_female, ax=ax, name="female")
        save_fig(fig, out_dir / "roc.png")
        fig, ax = plt.subplots(figsize=(4, 4))
        PrecisionRecallDisplay.from_predictions(y_true, p_female, ax=ax, name="female")
        save_fig(fig, out_dir / "precision_recall.png")
        written += [out_dir / "roc.png", out_dir / "precision_recall.png"]
    return written


def similarity_plots(genuine: np.ndarray, impostor: np.ndarray, threshold: float, out_dir: Path,
                     prefix: str = "") -> list[Path]:
    """Histogram of genuine vs impostor similarities and the verification ROC curve (log FAR)."""
    from facecli.metrics import roc_points

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-1, 1, 81)
    if len(impostor):
        ax.hist(impostor, bins=bins, alpha=0.6, density=True, label=f"impostor ({len(impostor)})")
    if len(genuine):
        ax.hist(genuine, bins=bins, alpha=0.6, density=True, label=f"genuine ({len(genuine)})")
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="cosine similarity", ylabel="density", title="genuine vs impostor similarity")
    ax.legend()
    save_fig(fig, out_dir / f"{prefix}similarity_histogram.png")
    written = [out_dir / f"{prefix}similarity_histogram.png"]
    if len(genuine) and len(impostor):
        fpr, tpr, _ = roc_points(genuine, impostor)
        if len(fpr) > 4000:  # thin the curve for drawing; keeps its shape at log scale
            keep = np.unique(np.r_[np.searchsorted(fpr, np.geomspace(1e-6, 1, 3000)).clip(0, len(fpr) - 1), len(fpr) - 1])
            fpr, tpr = fpr[keep], tpr[keep]
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(np.maximum(fpr, 1e-6), tpr)
        ax.set(xscale="log", xlabel="false accept rate", ylabel="true accept rate", title="verification ROC",
               xlim=(1e-5, 1), ylim=(0, 1.01))
        ax.grid(True, which="both", alpha=0.3)
        save_fig(fig, out_dir / f"{prefix}roc.png")
        written.append(out_dir / f"{prefix}roc.png")
    return written


IDENTITY_ROWS = [
    ("probes", "probes"), ("probes whose identity is in the gallery", "probes_in_gallery"),
    ("open-set probes (identity not in gallery)", "probes_open_set"), ("top-1 accuracy (closed set)", "top1_accuracy"),
    ("macro-F1 over identities (closed set)", "macro_f1"),
    ("identified and accepted at T (DIR)", "detection_identification_rate"),
    ("open-set probes wrongly accepted (FPIR)", "fpir"), ("open-set accuracy (rejection counts right)", "open_set_accuracy"),
    ("verification accuracy at T", "verification_accuracy"), ("verification precision at T", "verification_precision"),
    ("verification recall (TAR) at T", "verification_recall"), ("verification F1 at T", "verification_f1"),
    ("verification FAR at T", "verification_far"), ("ROC AUC", "verification_roc_auc"),
    ("TAR at FAR 1e-2", "verification_tar_at_far_1e-2"), ("TAR at FAR 1e-3", "verification_tar_at_far_1e-3"),
    ("TAR at FAR 1e-4", "verification_tar_at_far_1e-4"), ("TAR at FAR 1e-5", "verification_tar_at_far_1e-5"),
    ("DIR at FPIR 1% (threshold-free, open set)", "dir_at_fpir_0.01"),
    ("DIR at FPIR 0.1% (threshold-free, open set)", "dir_at_fpir_0.001"),
    ("threshold T", "threshold"), ("threshold from", "threshold_source"),
]
KIND_COLUMNS = {"probes": "probes", "top1_accuracy": "top-1", "macro_f1": "macro-F1", "fpir": "FPIR",
                "verification_f1": "verif F1", "verification_roc_auc": "AUC",
                "verification_tar_at_far_1e-3": "TAR@1e-3", "verification_tar_at_far_1e-4": "TAR@1e-4",
                "dir_at_fpir_0.01": "DIR@1%"}


def write_identity_report(result, out_dir: Path, prefix: str = "", extra: dict | None = None,
                          plots: bool = True) -> None:
    """metrics JSON, per-distortion CSV and (``plots``) similarity histogram and ROC PNGs of a scored match."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {**(extra or {}), **result.metrics}
    if result.per_kind is not None:
        payload["per_distortion"] = result.per_kind.to_dict(orient="index")
        write_with(out_dir / f"{prefix}per_distortion.csv", lambda tmp: result.per_kind.to_csv(tmp))
    from facecli.atomic import write_json

    write_json(out_dir / f"{prefix}metrics.json", payload)
    if plots:
        similarity_plots(result.genuine, result.impostor, result.metrics["threshold"], out_dir, prefix)
    else:  # a report folder never mixes this run's figures with an older run's plots
        for name in ("similarity_histogram.png", "roc.png"):
            (out_dir / f"{prefix}{name}").unlink(missing_ok=True)


def print_identity_report(con: Console, result, title: str) -> None:
    """The summary table and the per-distortion table of a scored match."""
    con.print(metric_table(title, [(label, result.metrics.get(key)) for label, key in IDENTITY_ROWS]))
    if result.per_kind is not None and len(result.per_kind):
        cols = [c for c in KIND_COLUMNS if c in result.per_kind.columns]
        df = result.per_kind[cols].rename(columns=KIND_COLUMNS)
        df = df.astype(float)
        df["probes"] = df["probes"].astype(int)
        con.print(frame_table("per distortion kind", df))


def console() -> Console:
    """The console all commands print to (stderr, so CSV on stdout stays clean)."""
    return Console(stderr=True, soft_wrap=True)  # long paths stay on one line (tables still fit the width)
