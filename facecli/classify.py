"""Gender classification of images with a facecli gender model: one row per face."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facecli.batch import Streamed, TableRun
from facecli.frame_gender import FUSED, FrameGender
from facecli.options import RunOptions
from facecli.pipeline import BatchResult, ImageInput, run_model
from facecli.runtime import OnnxModel
from facecli.scan import input_name

CLASSIFY_COLUMNS = ["path", "face", "label", "p_female", "evidence", "face_status", "restored", "box", "landmarks",
                    "error"]


@dataclass
class ClassifyRun(TableRun):
    """The outcome of :func:`facecli.classify_images`: one ``table`` row per face (see :data:`CLASSIFY_COLUMNS`),
    the number of input ``images``, and the threshold on P(female) with where it came from."""

    table: pd.DataFrame | None  # None for a run streamed into a file (see ``streamed``)
    images: int
    threshold: float
    threshold_source: str
    labels: tuple[str, ...] = ("male", "female")
    streamed: Streamed | None = None

    def summary_rows(self) -> list[tuple[str, object]]:
        """Images, faces, counts per label, face status counts, files that failed (and, for a resumed run,
        how many inputs the interrupted run had done)."""
        from facecli.summary import classify_rows, streamed_rows

        if self.streamed is not None:
            return streamed_rows(self.streamed)
        return classify_rows(self.table, self.images, self.labels)

    def save(self, out: str | os.PathLike, raw: bool = False) -> Path:
        """Write the table to ``out`` (:meth:`facecli.batch.TableRun.write`)."""
        return self.write(out, raw)


def gender_outputs(model: OnnxModel, paths: Sequence[ImageInput], run: RunOptions, threshold: float,
                   frame: FrameGender | None = None, all_faces: bool = True) -> tuple[BatchResult, set[int]]:
    """Run the gender model; with ``frame``, faces the glare washed out (``fallback``) get the frame's evidence
    fused in (:class:`facecli.frame_gender.FrameGender`). Returns the batch result and the input indices
    whose P(female) is fused."""
    fused: set[int] = set()

    def fuse(crops: list, out: np.ndarray) -> None:
        gone = [(k, c) for k, c in enumerate(crops) if c.face_status == "fallback" and c.extra is not None]
        if gone:
            p_frame = frame.p_female([c.extra for _, c in gone])
            rows = [k for k, _ in gone]
            out[rows] = frame.fuse(out[rows].reshape(-1), p_frame, threshold).reshape(out[rows].shape)
            fused.update(c.index for _, c in gone)

    res = run_model(model, paths, run, all_faces=all_faces, extra=frame.crop if frame else None,
                    on_batch=fuse if frame else None)
    return res, fused


def classify_images(model: OnnxModel, paths: Sequence[ImageInput], root: Path | None, threshold: float,
                    run: RunOptions, frame: FrameGender | None = None,
                    names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per face (or per image without detection) with ``label`` and ``p_female`` at ``threshold``.

    With detection, an image without a face gets one row with ``face_status`` "not_found" and no label (a cat
    is neither male nor female); ``box`` is "x y w h" and ``landmarks`` the five points "x1 y1 ... x5 y5" in
    image pixels; ``evidence`` is "face", or "face+frame" where the glare washed the face out and ``frame``
    (the whole frame's gender evidence) was fused in; ``restored`` says what restoration did to the image
    (untouched, denoise, derain; off with ``restore="none"``). Unreadable files get a row with an ``error`` and
    empty prediction. ``path`` is relative to ``root`` when given (or ``names[i]`` when given). Rows keep the
    input order.
    """
    labels = model.card.labels
    res, fused = gender_outputs(model, paths, run, threshold, frame)
    rows: list[dict] = []
    for crop, p in zip(res.crops, res.outputs.reshape(-1), strict=True):
        rows.append({
            "_i": crop.index, "face": crop.face,
            "label": labels[int(p >= threshold)] if crop.has_face else "",
            "p_female": float(p) if crop.has_face else float("nan"),
            "evidence": (FUSED if crop.index in fused and crop.face == 0 else "face") if crop.has_face else "",
            "face_status": crop.face_status, "restored": crop.restored,
            "box": "" if crop.box is None else " ".join(map(str, crop.box)),
            "landmarks": "" if crop.landmarks is None else " ".join(f"{v:.1f}" for v in crop.landmarks.reshape(-1)),
            "error": "",
        })
    for i, err in res.failures.items():
        rows.append({"_i": i, "face": "", "label": "", "p_female": float("nan"), "evidence": "", "face_status": "",
                     "restored": "", "box": "", "landmarks": "", "error": err})
    df = pd.DataFrame(rows, columns=["_i", *CLASSIFY_COLUMNS[1:]])
    df.insert(0, "path", [names[i] if names is not None else input_name(paths[i], i, root) for i in df["_i"]])
    return df.sort_values(["_i", "face"], key=lambda c: pd.to_numeric(c, errors="coerce").fillna(-1),
                          kind="stable").drop(columns="_i").reset_index(drop=True)
