"""Gender where the face is gone: the whole frame's evidence fused with the face model's.

When sun glare washes a face out, the detector places it by its framing rule and marks it ``fallback``;
the face gender model then sees a white disc. The frame still shows hair, head outline, clothes and
build. :class:`FrameGender` embeds the whole frame with the shipped photo matcher
(``identity_facecom.onnx``) and applies a linear head (``gender_frame_head.onnx``, trained by
``python -m facecli.training.gender_frame``). For a ``fallback`` face the two are fused: their log-odds,
each measured from its own threshold, are averaged, and the result is put back on the face model's
threshold, so ``label`` and ``p_female`` keep their meaning. On the held-out people's sun-glared copies
(FACECOM Task A train, 386 photos, 80 female) this lifts accuracy from 0.850 (face) and 0.920 (frame
alone) to 0.928 (fused); ROC AUC 0.883 / 0.903 / 0.933.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facecli.errors import FacecliError
from facecli.options import RunOptions
from facecli.photo import PhotoStage, PhotoView
from facecli.runtime import load_model

HEAD_FILE = "gender_frame_head.onnx"
FUSED = "face+frame"  # the classify row's ``evidence`` where the frame was fused in


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class FrameGender:
    """P(female) of whole frames: the photo matcher's embedding under a linear head. The head is a facecli model
    (its card a gender card that ``reads`` the photo matcher's embedding), loaded by
    :func:`facecli.runtime.load_model` like the others, so ``--device`` and ``--threads`` reach it."""

    def __init__(self, head_path: Path, embedder: Any, run: RunOptions | None = None) -> None:
        run = run or RunOptions()
        self.head = load_model(head_path, "gender", run.device, run.threads)
        trained_on = self.head.card.reads
        if not trained_on:
            raise FacecliError(f"{head_path} is not a frame gender head (its card reads no embedder)")
        if trained_on != embedder.sha256 and trained_on not in embedder.card.embeds_like:  # or its int8 copy
            raise FacecliError(f"{head_path} was trained on another embedder than {embedder.path}")
        self.threshold = self.head.card.default_threshold
        self.embedder = embedder
        self.stage = PhotoStage(embedder, plain=False, probe=False)  # the photo matcher's view of the frame

    def crop(self, bgr: np.ndarray) -> PhotoView:
        """The frame as the embedder sees it (the pipeline's ``extra`` hook: run on each decoded image)."""
        return self.stage.view(bgr)

    def p_female(self, views: list[PhotoView]) -> np.ndarray:
        """P(female) of frames cut by :meth:`crop`."""
        return np.asarray(self.head.run(self.stage.embed(views)), np.float32).reshape(-1)

    def fuse(self, p_face: np.ndarray, p_frame: np.ndarray, face_threshold: float) -> np.ndarray:
        """Face and frame P(female) fused: the mean of their log-odds from their own thresholds, read back on
        the face model's threshold."""
        z = 0.5 * ((_logit(p_face) - _logit(face_threshold)) + (_logit(p_frame) - _logit(self.threshold)))
        return (1.0 / (1.0 + np.exp(-(z + _logit(face_threshold))))).astype(np.float32)
