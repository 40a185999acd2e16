"""Which model a run uses: the model a caller named (a path or a loaded one), the model a gallery was built
with, the photo matcher of a gallery, the whole-frame gender evidence. Between :mod:`facecli.runtime` (loading
one file) and the verbs (:mod:`facecli.api`, the jobs), so both can ask without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from facecli.card import check_task
from facecli.errors import FacecliError
from facecli.gallery import Gallery, embeds_alike
from facecli.options import RunOptions
from facecli.photo import PHOTO_MODEL_FILE
from facecli.runtime import OnnxModel, is_shipped, load_model, models_dir, shipped_model_path

ModelArg = OnnxModel | str | os.PathLike | None


def resolve_model(model: ModelArg, task: str | None, run: RunOptions) -> OnnxModel:
    """The model for ``task``: checked once here, trusted below."""
    if isinstance(model, OnnxModel):
        if task is not None:
            check_task(model.card, task, str(model.path))
        return model
    return load_model(model, task, run.device, run.threads)


def model_for_gallery(gallery: Gallery, model: ModelArg = None, *, device: str = "auto",
                      options: RunOptions | None = None) -> OnnxModel:
    """The identity model that matches ``gallery``: ``model`` when given (it must be the one that built the
    gallery, or embed alike: a float model and its int8 copy), else the model file the gallery records when it
    is not a shipped one, else the shipped model for the device (which must be the one that built it)."""
    run = options or RunOptions.of(device=device)
    if model is None:
        recorded = (gallery.meta.get("model") or {}).get("path")
        if recorded and Path(recorded).is_file() and not is_shipped(recorded):
            model = recorded
    m = resolve_model(model, "identity", run)
    gallery.check_model(m.sha256, m.path, m.card.embeds_like)
    return m


def photo_model_for(gallery: Gallery | None = None, *, options: RunOptions | None = None) -> OnnxModel | None:
    """The photo matcher of ``gallery`` (the file it records when not a shipped one, else the shipped one for
    the device: its int8 copy on the CPU), or for a new gallery (None) the shipped one; None when the gallery
    keeps no photo evidence or nothing is shipped."""
    run = options or RunOptions()
    shipped = shipped_model_path(PHOTO_MODEL_FILE, run.device)
    if gallery is None:
        return resolve_model(shipped, "identity", run) if shipped.is_file() else None
    if gallery.photos is None:
        return None
    recorded = gallery.photos.model.get("path")
    path = recorded if recorded and Path(recorded).is_file() and not is_shipped(recorded) else shipped
    if not Path(path).is_file():
        raise FacecliError(f"gallery keeps photo evidence but its photo matcher {recorded} is missing")
    m = resolve_model(path, "identity", run)
    if not embeds_alike(gallery.photos.model, m.sha256, m.card.embeds_like):
        raise FacecliError(f"gallery's photo evidence was made by another photo matcher than {m.path}; "
                           "rebuild the gallery")
    return m


def frame_gender(options: RunOptions | None = None) -> Any:
    """The shipped whole-frame gender evidence (:class:`facecli.frame_gender.FrameGender`), or None when its
    files are not installed."""
    from facecli.frame_gender import HEAD_FILE, FrameGender

    run = options or RunOptions()
    head, embedder = models_dir() / HEAD_FILE, shipped_model_path(PHOTO_MODEL_FILE, run.device)
    if not (head.is_file() and embedder.is_file()):
        return None
    return FrameGender(head, resolve_model(embedder, "identity", run), run)
