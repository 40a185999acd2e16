"""Batch jobs: what one part of a streamed run does (classify it, or match it against a gallery), as small
picklable records, so that the local engine and the Ray engine run exactly the same code.

A job loads its models the first time it runs, in whatever process runs it (once per Ray actor), and
turns a part's named inputs into its table rows and summary rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from facecli.inputs import Named
from facecli.options import RunOptions
from facecli.resolve import frame_gender, model_for_gallery, photo_model_for
from facecli.resolve import resolve_model as _model

Rows = list[tuple[str, Any]]


def quiet(options: RunOptions) -> RunOptions:
    """``options`` without its progress callbacks (they cannot travel to another process)."""
    return dataclasses.replace(options, on_total=None, on_progress=None)


class Job:
    """What every job shares: its loaded models (fields named ``_...``) stay in the process that loaded them,
    and its options travel without their progress callbacks."""

    options: RunOptions

    def __getstate__(self) -> dict[str, Any]:
        state = {k: (None if k.startswith("_") else v) for k, v in self.__dict__.items()}
        return {**state, "options": quiet(self.options)}


@dataclass
class ClassifyJob(Job):
    """Classify a part's inputs: one row per face (:func:`facecli.classify.classify_images`)."""

    model_path: str
    threshold: float
    frame: bool
    options: RunOptions
    _model: Any = field(default=None, repr=False, compare=False)
    _frame: Any = field(default=None, repr=False, compare=False)

    def load(self, model: Any = None) -> ClassifyJob:
        """Load the models (or take ``model``, already loaded)."""

        self._model = model or _model(self.model_path, "gender", self.options)
        self._frame = frame_gender(self.options) if self.frame else None
        return self

    def __call__(self, part: list[Named]) -> tuple[pd.DataFrame, Rows]:
        from facecli.classify import classify_images
        from facecli.summary import classify_rows

        if self._model is None:
            self.load()
        table = classify_images(self._model, [n.item for n in part], None, self.threshold, self.options,
                                self._frame, names=[n.name for n in part])
        return table, classify_rows(table, len(part), self._model.card.labels)


@dataclass
class MatchJob(Job):
    """Match a part's probes (no ground truth) against a gallery (:func:`facecli.recognise.match_images`)."""

    model_path: str
    gallery: Any  # facecli.gallery.Gallery
    decision: Any  # facecli.decision.Decision: the threshold, its source and what it means for this gallery
    top_k: int
    options: RunOptions
    _model: Any = field(default=None, repr=False, compare=False)
    _photo: Any = field(default=None, repr=False, compare=False)

    def load(self, model: Any = None, photo_model: Any = None) -> MatchJob:

        self._model = model or model_for_gallery(self.gallery, self.model_path, options=self.options)
        self._photo = photo_model or photo_model_for(self.gallery, options=self.options)
        return self

    def __call__(self, part: list[Named]) -> tuple[pd.DataFrame, Rows]:
        from facecli.recognise import MATCH_COLUMNS, match_images
        from facecli.summary import match_rows

        if self._model is None:
            self.load()
        table, _ = match_images(self._model, self.gallery, [n.item for n in part], self.decision.threshold, self.options,
                                names=[n.name for n in part], top_k=self.top_k, photo_model=self._photo)
        table = table.reindex(columns=MATCH_COLUMNS)
        for col in ("path", "identity", "nearest", "top_k", "top_k_similarity", "evidence", "face_status",
                    "restored", "error"):
            table[col] = table[col].fillna("")
        return table, match_rows(table, self.decision.rows(), self.gallery.evidence)
