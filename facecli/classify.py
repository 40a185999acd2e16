"""Gender classification of image files with an exported facecli gender model."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from facecli.card import check_task, resolve_threshold
from facecli.pipeline import ImageInput, run_model
from facecli.runtime import OnnxModel

CLASSIFY_COLUMNS = ["path", "face", "label", "p_female", "face_status", "box", "landmarks", "error"]


def classify_images(
    model: OnnxModel,
    paths: Sequence[ImageInput],
    root: Path | None = None,
    *,
    batch_size: int = 64,
    detect: str | None = None,
    threshold: float | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """One row per face (or per image without detection) with ``label`` and ``p_female``.

    ``threshold`` defaults to the one tuned on validation and stored in the model. With detection, an
    image without a face gets one row with ``face_status`` "not_found" and no label (a cat is neither
    male nor female); ``box`` is "x y w h" and ``landmarks`` the five points "x1 y1 ... x5 y5" in image
    pixels. Unreadable files get a row with an ``error`` and empty prediction. ``path`` is relative to
    ``root`` when given. Rows keep the input order.
    """
    check_task(model.card, "gender", str(model.path))
    thr, _ = resolve_threshold(model.card, threshold)
    labels = model.card.labels
    res = run_model(model, paths, batch_size=batch_size, all_faces=True, detect=detect, on_progress=on_progress)
    rows: list[dict] = []
    for crop, p in zip(res.crops, res.outputs.reshape(-1), strict=True):
        rows.append({
            "_i": crop.index, "face": crop.face,
            "label": labels[int(p >= thr)] if crop.has_face else "",
            "p_female": float(p) if crop.has_face else float("nan"),
            "face_status": crop.face_status, "box": "" if crop.box is None else " ".join(map(str, crop.box)),
            "landmarks": "" if crop.landmarks is None else " ".join(f"{v:.1f}" for v in crop.landmarks.reshape(-1)),
            "error": "",
        })
    for i, err in res.failures.items():
        rows.append({"_i": i, "face": "", "label": "", "p_female": float("nan"), "face_status": "", "box": "",
                     "landmarks": "", "error": err})
    df = pd.DataFrame(rows, columns=["_i", *CLASSIFY_COLUMNS[1:]])
    df.insert(0, "path", [input_name(paths[i], i, root) for i in df["_i"]])
    return df.sort_values(["_i", "face"], key=lambda c: pd.to_numeric(c, errors="coerce").fillna(-1),
                          kind="stable").drop(columns="_i").reset_index(drop=True)


def input_name(item: object, index: int, root: Path | None = None) -> str:
    """How a result row names its input: the path (relative to ``root``) or ``<array N>`` for arrays."""
    if isinstance(item, str | os.PathLike):
        return rel(Path(item), root)
    return f"<array {index}>"


def rel(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` (POSIX separators), or as given when outside it."""
    if root is None:
        return path.as_posix()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
