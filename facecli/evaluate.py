"""Evaluation on labelled folders: the scored predictions, saved as a CSV, metrics JSON and plots."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facecli.card import GENDER_LABELS
from facecli.errors import AllInputsFailed, FacecliError
from facecli.options import RunOptions
from facecli.protocols import MatchResult
from facecli.runtime import OnnxModel
from facecli.scan import rel


@dataclass
class GenderEval:
    """The outcome of :func:`facecli.evaluate_gender`: one ``table`` row per image (path, true, predicted,
    p_female, face_status, error) and the ``metrics`` of the readable ones (None when none was readable)."""

    table: pd.DataFrame
    metrics: dict[str, Any] | None
    root: Path
    y: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    p: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def summary_rows(self) -> list[tuple[str, Any]]:
        """Accuracy, female precision, recall and F1, balanced accuracy, ROC AUC, threshold."""
        from facecli.summary import gender_rows

        return gender_rows(self.metrics) if self.metrics else []

    def save(self, out_dir: str | os.PathLike, raw: bool = False) -> Path:
        """Write ``predictions.csv``, ``metrics.json`` and the PNG plots into ``out_dir``. Raises AllInputsFailed
        (after writing the predictions, whose error column says why) when no image could be read. Text cells
        that would start a spreadsheet formula get a leading ``'`` unless ``raw``."""
        from facecli.atomic import write_json
        from facecli.outputs import write_csv
        from facecli.report import gender_plots

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_csv(out_dir / "predictions.csv", self.table, raw=raw)
        if self.metrics is None:
            raise AllInputsFailed(f"every one of the {len(self.table)} images under {self.root} failed to be read; "
                                  f"see the error column of {out_dir / 'predictions.csv'}")
        write_json(out_dir / "metrics.json", self.metrics)
        gender_plots(self.y, self.p, self.metrics["threshold"], out_dir)
        return out_dir


def evaluate_gender(model: OnnxModel, root: Path, paths: list[Path], labels: list[int], threshold: float,
                    run: RunOptions, frame: Any = None) -> GenderEval:
    """Score a gender model on labelled images (one prediction per image: the largest face when detecting).
    Unreadable files are listed in the table and counted, and left out of the metrics."""
    from facecli.classify import gender_outputs
    from facecli.frame_gender import FUSED
    from facecli.metrics import gender_metrics

    run.total(len(paths))
    res, fused = gender_outputs(model, paths, run, threshold, frame, all_faces=False)
    p = np.full(len(paths), np.nan)
    status = [""] * len(paths)
    restored = [""] * len(paths)
    for crop, v in zip(res.crops, res.outputs.reshape(-1), strict=True):
        p[crop.index] = v
        status[crop.index] = crop.face_status
        restored[crop.index] = crop.restored
    ok = ~np.isnan(p)
    y = np.asarray(labels)
    df = pd.DataFrame({
        "path": [rel(q, root) for q in paths],
        "true": [GENDER_LABELS[v] for v in y],
        "predicted": [GENDER_LABELS[int(v >= threshold)] if k else "" for v, k in zip(p, ok, strict=True)],
        "p_female": p,
        "evidence": [(FUSED if i in fused else "face") if k else "" for i, k in enumerate(ok)],
        "face_status": status,
        "restored": restored,
        "error": [res.failures.get(i, "") for i in range(len(paths))],
    })
    if not ok.any():
        return GenderEval(df, None, root)
    m = gender_metrics(y[ok], p[ok], threshold)
    m.update(failed=int((~ok).sum()), data=str(root), model=str(model.path))
    return GenderEval(df, m, root, y[ok], p[ok])


@dataclass
class IdentityEval:
    """The outcome of :func:`facecli.evaluate_identity`: per protocol ("facecom", "cross_photo",
    "clean_cross_photo") the scored ``results`` and their probe ``tables``."""

    results: dict[str, MatchResult]
    tables: dict[str, pd.DataFrame]
    root: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """Every protocol's probe rows, with a ``protocol`` column."""
        return pd.concat([t.assign(protocol=name) for name, t in self.tables.items()], ignore_index=True)

    def summary_rows(self) -> list[tuple[str, Any]]:
        """Top-1, macro-F1 and TAR at FAR 1e-3 of each protocol."""
        return [(f"{name} {label}", res.metrics.get(key)) for name, res in self.results.items()
                for label, key in (("probes", "probes"), ("top-1", "top1_accuracy"), ("macro-F1", "macro_f1"),
                                   ("TAR at FAR 1e-3", "verification_tar_at_far_1e-3"))]

    def save(self, out_dir: str | os.PathLike, raw: bool = False) -> Path:
        """Write, per protocol, ``<protocol>_matches.csv``, ``<protocol>_metrics.json``,
        ``<protocol>_per_distortion.csv`` and the similarity histogram and ROC PNGs into ``out_dir``. Text cells
        that would start a spreadsheet formula get a leading ``'`` unless ``raw``."""
        from facecli.outputs import write_csv
        from facecli.report import write_identity_report

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, res in self.results.items():
            write_csv(out_dir / f"{name}_matches.csv", self.tables[name], raw=raw)
            write_identity_report(res, out_dir, f"{name}_", extra=self.extra)
        return out_dir


def evaluate_identity(model: OnnxModel, root: Path, threshold: float | None, run: RunOptions,
                      photo_model: OnnxModel | None = None, fpir: float | None = None) -> IdentityEval:
    """FACECOM, cross-photo and clean cross-photo protocols on a Task B-layout folder; one embedding per image,
    scores on the model's scale, and with ``photo_model`` photo evidence as ``match`` weighs it. Each protocol's
    threshold is decided as ``match`` decides it for that protocol's gallery (:func:`facecli.decision.decide`:
    ``threshold``, else ``fpir`` and the gallery's size)."""
    from facecli.decision import decide
    from facecli.protocols import run_protocol
    from facecli.recognise import embed_images
    from facecli.scan import scan_identity_folder

    items = scan_identity_folder(root)
    run.total(len(items))
    photo = _PhotoInputs(photo_model, len(items)) if photo_model is not None else None
    emb = embed_images(model, [it.path for it in items], run, extra=photo.inputs if photo else None,
                       on_batch=photo.keep if photo else None)
    if not emb.ok.any():
        raise AllInputsFailed(f"every one of the {len(items)} images under {root} failed to be read "
                              f"(first: {next(iter(emb.failures.values()), '')})")
    results, tables = {}, {}
    for name in ("facecom", "cross_photo", "clean_cross_photo"):
        got = run_protocol(items, emb.vectors, emb.ok, name,
                           lambda n: decide(model.card, threshold=threshold, fpir=fpir, comparisons=n),
                           scale=model.card.score_scale,
                           face_status=emb.face_status, photo=photo.data() if photo else None)
        if got is None:
            continue
        res, probe_idx = got
        table = res.table.copy()
        table.insert(0, "path", [rel(items[i].path, root) for i in probe_idx])
        table["distortion"] = [items[i].distortion for i in probe_idx]
        table["face_status"] = [emb.face_status[i] for i in probe_idx]
        table["restored"] = [emb.restored[i] for i in probe_idx]
        results[name], tables[name] = res, table
    if not results:
        raise FacecliError(f"{root} has no clean gallery image with distorted probes (ROOT/<identity>/distortion/)")
    return IdentityEval(results, tables, root, {"data": str(root), "model": str(model.path),
                                                "failed_files": len(emb.failures),
                                                "evidence": "face and photo" if photo else "face"})


class _PhotoInputs:
    """Collects the photo evidence inputs of every evaluated image while the face pass runs (the photo stage's
    views, and the matcher's vectors batch by batch)."""

    def __init__(self, model: OnnxModel, n: int) -> None:
        from facecli.photo import MAP_SIDE, PhotoStage

        self.stage = PhotoStage(model)
        self.inputs = self.stage.view
        self.vectors = np.zeros((n, int(model.card.embedding_dim or 512)), np.float32)
        self.thumbs = np.zeros((n, MAP_SIDE, MAP_SIDE), np.uint8)
        self.probe_thumbs = np.zeros_like(self.thumbs)
        self.usable = np.zeros((n, MAP_SIDE, MAP_SIDE), bool)

    def keep(self, crops: list, _: np.ndarray) -> None:
        firsts = [c for c in crops if c.extra is not None]
        if not firsts:
            return
        self.vectors[[c.index for c in firsts]] = self.stage.embed([c.extra for c in firsts])
        for c in firsts:
            v = c.extra
            self.thumbs[c.index], self.probe_thumbs[c.index], self.usable[c.index] = v.thumb, v.probe, v.usable

    def data(self):
        from facecli.protocols import PhotoData

        return PhotoData(self.vectors, self.thumbs, self.probe_thumbs, self.usable)
