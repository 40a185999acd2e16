"""Evaluation on labelled folders: predictions CSV, metrics JSON and plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from facecli.atomic import write_json, write_with
from facecli.card import resolve_threshold
from facecli.classify import rel
from facecli.errors import AllInputsFailed, FacecliError
from facecli.metrics import gender_metrics
from facecli.pipeline import run_model
from facecli.report import gender_plots
from facecli.runtime import OnnxModel
from facecli.scan import GENDER_LABELS, gender_split_folder, scan_gender_folder


def evaluate_gender(
    model: OnnxModel,
    data: Path,
    out_dir: Path,
    *,
    threshold: float | None = None,
    detect: str | None = None,
    batch_size: int = 64,
    split: str | None = None,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate a gender model on a folder with ``male/`` and ``female/`` (or a Task A folder's ``val/``,
    or its ``split``; see :func:`facecli.scan.gender_split_folder`).

    Writes ``predictions.csv`` (path, true, predicted, p_female, error), ``metrics.json`` and PNG plots to
    ``out_dir``. One prediction per image (the largest face when detecting). Unreadable files are listed
    in the CSV and counted, and left out of the metrics.
    """
    import pandas as pd

    root = gender_split_folder(data, split)
    paths, labels = scan_gender_folder(root)
    if on_total:
        on_total(len(paths))
    thr, _ = resolve_threshold(model.card, threshold)
    res = run_model(model, paths, batch_size=batch_size, detect=detect, on_progress=on_progress)
    p = np.full(len(paths), np.nan)
    status = [""] * len(paths)
    for crop, v in zip(res.crops, res.outputs.reshape(-1), strict=True):
        p[crop.index] = v
        status[crop.index] = crop.face_status
    ok = ~np.isnan(p)
    y = np.asarray(labels)
    df = pd.DataFrame({
        "path": [rel(q, root) for q in paths],
        "true": [GENDER_LABELS[v] for v in y],
        "predicted": [GENDER_LABELS[int(v >= thr)] if k else "" for v, k in zip(p, ok, strict=True)],
        "p_female": p,
        "face_status": status,
        "error": [res.failures.get(i, "") for i in range(len(paths))],
    })
    out_dir.mkdir(parents=True, exist_ok=True)
    write_with(out_dir / "predictions.csv", lambda tmp: df.to_csv(tmp, index=False))
    if not ok.any():
        raise AllInputsFailed(f"every one of the {len(paths)} images under {root} failed to be read; "
                              f"see the error column of {out_dir / 'predictions.csv'}")
    m = gender_metrics(y[ok], p[ok], thr)
    m["failed"] = int((~ok).sum())
    m["data"] = str(root)
    m["model"] = str(model.path)
    write_json(out_dir / "metrics.json", m)
    gender_plots(y[ok], p[ok], thr, out_dir)
    return {"metrics": m, "predictions": df}


def evaluate_identity(
    model: OnnxModel,
    data: Path,
    out_dir: Path,
    *,
    threshold: float | None = None,
    detect: str | None = None,
    batch_size: int = 64,
    split: str | None = None,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """FACECOM, cross-photo and clean cross-photo protocols on a Task B-layout folder; one embedding per image.

    Writes, per protocol, ``<protocol>_metrics.json``, ``<protocol>_per_distortion.csv``,
    ``<protocol>_matches.csv`` and the similarity histogram and ROC PNGs to ``out_dir``.
    Returns {protocol: MatchResult}.
    """
    from facecli.protocols import run_protocol
    from facecli.recognise import embed_images
    from facecli.report import write_identity_report
    from facecli.scan import identity_split_folder, scan_identity_folder

    root = identity_split_folder(data, split)
    items = scan_identity_folder(root)
    if on_total:
        on_total(len(items))
    emb = embed_images(model, [it.path for it in items], batch_size=batch_size, detect=detect,
                       on_progress=on_progress)
    thr, _ = resolve_threshold(model.card, threshold)
    if not emb.ok.any():
        raise AllInputsFailed(f"every one of the {len(items)} images under {root} failed to be read "
                              f"(first: {next(iter(emb.failures.values()), '')})")
    results = {}
    for name in ("facecom", "cross_photo", "clean_cross_photo"):
        got = run_protocol(items, emb.vectors, emb.ok, name, thr)
        if got is None:
            continue
        res, probe_idx = got
        table = res.table.copy()
        table.insert(0, "path", [rel(items[i].path, root) for i in probe_idx])
        table["distortion"] = [items[i].distortion for i in probe_idx]
        write_with(out_dir / f"{name}_matches.csv", lambda tmp, t=table: t.to_csv(tmp, index=False))
        write_identity_report(res, out_dir, f"{name}_", extra={"data": str(root), "model": str(model.path),
                                                                 "failed_files": len(emb.failures)})
        results[name] = res
    if not results:
        raise FacecliError(f"{root} has no clean gallery image with distorted probes (ROOT/<identity>/distortion/)")
    return results
