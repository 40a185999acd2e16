"""Choosing a match threshold on labelled data and storing it in the gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facecli.errors import FacecliError
from facecli.gallery import Gallery
from facecli.metrics import midpoint_below, verification_metrics
from facecli.options import RunOptions
from facecli.recognise import match_folder
from facecli.runtime import OnnxModel


def choose_threshold(genuine: np.ndarray, impostor: np.ndarray, objective: str = "f1", far: float = 1e-3) -> float:
    """The threshold maximising verification F1 ("f1"; halfway between scores, see
    :func:`facecli.metrics.midpoint_below`), or the lowest one whose FAR is at most ``far``."""
    if objective == "far":
        if len(impostor) == 0:
            raise FacecliError("no impostor pairs: cannot set a threshold by false accept rate")
        imp = np.sort(impostor)
        allowed = int(np.floor(far * len(imp)))  # impostors that may pass
        return float(np.nextafter(imp[len(imp) - allowed - 1], np.inf)) if allowed < len(imp) else float(imp[0])
    if len(genuine) == 0 or len(impostor) == 0:
        raise FacecliError("calibration by F1 needs probes whose identities are in the gallery, and impostors")
    from sklearn.metrics import precision_recall_curve

    y = np.r_[np.ones(len(genuine)), np.zeros(len(impostor))]
    scores = np.r_[genuine, impostor]
    prec, rec, thr = precision_recall_curve(y, scores)
    f1 = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12)
    return midpoint_below(scores, float(thr[int(np.argmax(f1))]), floor=-1.0)


def calibrate_gallery(model: OnnxModel, gallery: Gallery, data: Path, run: RunOptions, *, objective: str = "f1",
                      far: float = 1e-3, which: str = "distorted", photo_model: OnnxModel | None = None
                      ) -> dict[str, Any]:
    """Match the labelled probes of ``data`` against ``gallery`` (with its photo evidence when ``photo_model``
    is given), choose the threshold on the model's score scale and set it in the gallery's metadata (the
    caller saves the gallery). Returns the threshold and the figures at it."""
    from facecli.decision import decide

    thr0 = decide(model.card, comparisons=len(gallery.rows)).threshold
    _, result = match_folder(model, gallery, data, thr0, run, which=which, layout="identity", photo_model=photo_model)
    if result is None:
        raise FacecliError(f"{data} has no ground truth (identity layout needed)")
    thr = choose_threshold(result.genuine, result.impostor, objective, far)
    ver = verification_metrics(result.genuine, result.impostor, thr)
    source = f"calibrated on {data} ({'maximum F1' if objective == 'f1' else f'FAR <= {far:g}'})"
    scale = model.card.score_scale
    gallery.meta.update(threshold=thr, threshold_source=source, threshold_calibrated=True,
                        score_scale=None if scale is None else scale.to_dict())
    return {"threshold": thr, "source": source, "far": ver["far"], "tar": ver["recall"], "f1": ver["f1"],
            "genuine": ver["pairs_genuine"], "impostor": ver["pairs_impostor"]}
