"""The public Python API: verb-named functions over files, folders and in-memory images.

Everything the ``facecli`` command line does goes through these functions, so a script gets the same
behaviour, defaults and checks. Images are given as a folder (scanned recursively), a file path, an RGB
``numpy`` array (``H x W x 3`` uint8, as from Pillow, scikit-image or :func:`load_image`; grayscale and
RGBA also work), or a list of paths and arrays. A model is an :class:`~facecli.runtime.OnnxModel` from
:func:`load_model`, a path to an ONNX file from ``facecli export``, or None for the shipped model. Bad
values raise :class:`~facecli.errors.FacecliError` with a one-line message; an unreadable image inside a
batch becomes a row with an ``error`` while the batch goes on.

Example::

    import numpy as np
    import facecli

    img = facecli.load_image("photo.jpg")                  # RGB uint8 array
    faces = facecli.detect_faces(img)                      # boxes and five landmarks, largest first
    table = facecli.classify_images([img, "other.jpg"])    # one row per face: label, p_female, ...
    vectors = facecli.embed_images(img).vectors            # (1, 128) unit-length face embedding
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facecli.card import check_task
from facecli.errors import FacecliError
from facecli.gallery import Gallery
from facecli.pipeline import ImageInput, load_input
from facecli.runtime import DEVICES, OnnxModel
from facecli.runtime import load_model as _load_model
from facecli.validate import check_choice, check_detect, check_float, check_int

if TYPE_CHECKING:
    import pandas as pd

Images = ImageInput | Sequence[ImageInput]
ModelArg = OnnxModel | str | os.PathLike | None
Progress = Callable[[int], None] | None

PROBE_CHOICES = ("distorted", "clean", "all")
LAYOUT_CHOICES = ("auto", "identity", "plain")
OBJECTIVE_CHOICES = ("f1", "far")
SPLIT_CHOICES = ("train", "val")


# ------------------------------------------------------------------ models and images


def load_model(path: str | os.PathLike | None = None, task: str | None = None, *, device: str = "auto") -> OnnxModel:
    """Load a facecli ONNX model with its model card.

    ``path`` None loads the shipped model for ``task`` ("gender" or "identity"); with a path, ``task``
    (when given) must match the model's. ``device``: "auto" (default) runs on CUDA when ONNX Runtime can
    use a GPU and on the CPU otherwise; "cuda" fails with a clear error when it cannot; "cpu".
    ``model.describe()`` says which file, shipped or not, and which device.
    """
    check_choice("device", device, DEVICES)
    if task is not None:
        check_choice("task", task, ("gender", "identity"))
    return _load_model(path, task, device)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an RGB uint8 array (EXIF orientation applied, huge JPEGs decoded reduced).

    Raises FacecliError for a missing, empty, truncated or undecodable file.
    """
    from facecli.decode import DecodeError, read_image

    try:
        return np.ascontiguousarray(read_image(path)[:, :, ::-1])
    except DecodeError as exc:
        raise FacecliError(f"{path}: {exc}") from None


def detect_faces(image: ImageInput, *, largest_only: bool = False) -> list[Any]:
    """Faces in one image (a path or an RGB array), largest first; an empty list when there is none.

    Each :class:`~facecli.detect.Face` has ``box`` (x, y, w, h), ``landmarks`` ((5, 2): left eye, right
    eye, nose tip, left and right mouth corner, in image pixels), ``score`` and ``status`` ("detected", or
    "fallback" for a degraded image whose face was placed by the framing). MTCNN in ONNX Runtime; large
    images are searched on a downscaled copy and tight crops inside a padded canvas.
    """
    from facecli.decode import DecodeError
    from facecli.detect import detect_faces as _detect

    try:
        bgr = load_input(image)
    except DecodeError as exc:
        raise FacecliError(str(exc)) from None
    return _detect(bgr, largest_only=largest_only)


def _model(model: ModelArg, task: str, device: str) -> OnnxModel:
    check_choice("device", device, DEVICES)
    if isinstance(model, OnnxModel):
        check_task(model.card, task, str(model.path))
        return model
    return _load_model(model, task, device)


def _inputs(images: Images) -> tuple[list[ImageInput], Path | None]:
    """A list of inputs and the root their paths are named relative to (a scanned folder)."""
    from facecli.scan import scan_images

    if isinstance(images, np.ndarray):
        return [images], None
    if isinstance(images, str | os.PathLike):
        p = Path(images)
        if p.is_dir():
            return list(scan_images(p)), p
        if not p.exists():
            raise FacecliError(f"not found: {p}")
        return [p], None
    if isinstance(images, Sequence):
        items = list(images)
        if not items:
            raise FacecliError("no images given")
        return items, None
    raise FacecliError(f"images must be a folder, a file, a numpy array or a list of them, not {type(images).__name__}")


def _common(batch_size: int, detect: str | None) -> None:
    check_int("batch_size", batch_size, 1)
    check_detect(detect)


# ------------------------------------------------------------------ gender


def classify_images(images: Images, model: ModelArg = None, *, threshold: float | None = None,
                    detect: str | None = None, batch_size: int = 64, device: str = "auto",
                    on_total: Progress = None, on_progress: Progress = None) -> pd.DataFrame:
    """Male/female for every face in ``images``: one row per face, largest first within an image.

    Columns: path (relative to a scanned folder; ``<array N>`` for arrays), face, label, p_female,
    face_status, box ("x y w h"), landmarks ("x1 y1 ... x5 y5"), error. ``threshold`` on P(female)
    defaults to the one tuned on validation data and stored in the model. ``detect`` None uses the
    model's own setting (the shipped model detects and aligns faces); an image with no face gets one row
    with ``face_status`` "not_found" and no label. ``batch_size`` images go through the model at once.
    """
    from facecli.classify import classify_images as _classify

    _common(batch_size, detect)
    m = _model(model, "gender", device)
    if threshold is not None:
        check_float("threshold", threshold, 0.0, 1.0)
    items, root = _inputs(images)
    if on_total:
        on_total(len(items))
    return _classify(m, items, root, batch_size=batch_size, detect=detect, threshold=threshold,
                     on_progress=on_progress)


def evaluate_gender(data: str | os.PathLike, model: ModelArg = None, *, out: str | os.PathLike = "eval-gender",
                    split: str | None = None, threshold: float | None = None, detect: str | None = None,
                    batch_size: int = 64, device: str = "auto", on_total: Progress = None,
                    on_progress: Progress = None) -> dict[str, Any]:
    """Evaluate a gender model on a labelled folder (``male/`` and ``female/``, or a Task A folder's
    ``val/``; ``split="train"`` to use ``train/`` on purpose). Writes predictions.csv, metrics.json and
    plots into ``out``; returns {"metrics", "predictions", "data"}. The threshold defaults to the model's."""
    from facecli.evaluate import evaluate_gender as _evaluate

    _common(batch_size, detect)
    check_choice("split", split, SPLIT_CHOICES, optional=True)
    if threshold is not None:
        check_float("threshold", threshold, 0.0, 1.0)
    m = _model(model, "gender", device)
    return _evaluate(m, Path(data), Path(out), threshold=threshold, detect=detect, batch_size=batch_size,
                     split=split, on_total=on_total, on_progress=on_progress)


# ------------------------------------------------------------------ identity


def embed_images(images: Images, model: ModelArg = None, *, detect: str | None = None, batch_size: int = 64,
                 device: str = "auto", on_progress: Progress = None) -> Any:
    """Unit-length face embeddings of ``images`` (the largest face of each), in input order.

    Returns an :class:`~facecli.recognise.Embedded`: ``vectors`` (N, D) float32 (NaN rows for inputs that
    failed), ``ok`` (N,) bool, ``failures`` {index: error} and ``face_status`` per input. Cosine
    similarity of two faces is the dot product of their vectors.
    """
    from facecli.recognise import embed_images as _embed

    _common(batch_size, detect)
    m = _model(model, "identity", device)
    items, _ = _inputs(images)
    return _embed(m, items, batch_size=batch_size, detect=detect, on_progress=on_progress)


def load_gallery(path: str | os.PathLike) -> Gallery:
    """Read a gallery folder written by :func:`build_gallery` (under its shared lock)."""
    return Gallery.load(path)


def build_gallery(root: str | os.PathLike, model: ModelArg = None, *, out: str | os.PathLike | None = None,
                  per_image: bool = True, include_distorted: bool = False, detect: str | None = None,
                  batch_size: int = 64, device: str = "auto", on_total: Progress = None,
                  on_progress: Progress = None) -> tuple[Gallery, Any]:
    """A gallery of the identities in ``root`` (``ROOT/<identity>/*.jpg``, clean photos), saved to ``out``
    when given. Returns (gallery, report with images embedded, failures and skipped identities).

    ``per_image`` (default) keeps one vector per photo and scores an identity by its best photo; False
    keeps one template (mean embedding) per identity. ``include_distorted`` also embeds ``distortion/``.
    """
    from facecli.recognise import build_gallery as _build

    _common(batch_size, detect)
    m = _model(model, "identity", device)
    gallery, report = _build(m, Path(root), include_distorted=include_distorted, per_image=per_image,
                             batch_size=batch_size, detect=detect, on_total=on_total, on_progress=on_progress)
    if out is not None:
        gallery.save(out)
    return gallery, report


def add_to_gallery(gallery: str | os.PathLike, root: str | os.PathLike, model: ModelArg = None, *,
                   include_distorted: bool = False, detect: str | None = None, batch_size: int = 64,
                   device: str = "auto", on_total: Progress = None,
                   on_progress: Progress = None) -> tuple[Gallery, int, int, Any]:
    """Add (or replace) the identities under ``root`` in the gallery folder ``gallery``, without
    re-embedding the others. Safe to run several at once. Returns (gallery, added, replaced, report)."""
    from facecli.recognise import add_to_gallery as _add

    _common(batch_size, detect)
    m = _model(model, "identity", device)
    return _add(m, Path(gallery), Path(root), include_distorted=include_distorted, batch_size=batch_size,
                detect=detect, on_total=on_total, on_progress=on_progress)


@dataclass
class MatchRun:
    """The outcome of :func:`match_probes`: one table row per probe, the scored result when the ground
    truth is known (else None), and the threshold used with where it came from."""

    table: pd.DataFrame
    result: Any
    threshold: float
    threshold_source: str

    def save(self, out: str | os.PathLike, report: str | os.PathLike | None = None, plots: bool = False,
             extra: dict[str, Any] | None = None) -> Path | None:
        """Write the CSV to ``out`` and, with ground truth, the report folder (default: ``<out stem>_report``
        next to it; metrics.json, per_distortion.csv, and with ``plots`` the histogram and ROC PNGs). A
        report folder never mixes runs: plots of an older run are removed when ``plots`` is off. Returns
        the report folder, or None without ground truth."""
        from facecli.atomic import check_output_file, write_with
        from facecli.report import write_identity_report
        from facecli.summary import open_set_note

        out = Path(out)
        check_output_file(out)
        write_with(out, lambda tmp: self.table.to_csv(tmp, index=False))
        if self.result is None:
            return None
        rdir = Path(report) if report is not None else out.with_name(out.stem + "_report")
        write_identity_report(self.result, rdir, extra={**(extra or {}), "note": open_set_note(self.result.metrics)},
                              plots=plots)
        return rdir


def match_probes(probes: Images, gallery: Gallery | str | os.PathLike, model: ModelArg = None, *,
                 threshold: float | None = None, top_k: int = 5, which: str = "distorted", layout: str = "auto",
                 detect: str | None = None, batch_size: int = 64, device: str = "auto", on_total: Progress = None,
                 on_progress: Progress = None) -> MatchRun:
    """Who each probe is: the nearest gallery identity when its cosine similarity reaches the threshold,
    else "unknown".

    ``probes``: a folder in the identity layout (``ROOT/<identity>/[distortion/]``: the true identity is
    then known and the result is scored; ``which`` picks distorted, clean or all images), any folder of
    images (``layout="plain"``, or "auto" decides), or images and arrays. ``threshold`` defaults to the
    gallery's (calibrated, else the model's validation-tuned one). ``top_k`` nearest identities are listed.
    """
    from facecli.card import resolve_threshold
    from facecli.recognise import match_folder, match_images

    _common(batch_size, detect)
    check_int("top_k", top_k, 1, 1000)
    check_choice("which", which, PROBE_CHOICES)
    check_choice("layout", layout, LAYOUT_CHOICES)
    g = gallery if isinstance(gallery, Gallery) else Gallery.load(gallery)
    m = _model(model, "identity", device)
    thr, source = resolve_threshold(m.card, threshold, g.threshold, g.threshold_source)
    kw = dict(threshold=thr, top_k=top_k, batch_size=batch_size, detect=detect, on_progress=on_progress)
    if isinstance(probes, str | os.PathLike) and Path(probes).is_dir():
        table, result = match_folder(m, g, Path(probes), which=which, layout=layout, on_total=on_total, **kw)
    else:
        items, root = _inputs(probes)
        if on_total:
            on_total(len(items))
        table, result = match_images(m, g, items, root=root, **kw)
    return MatchRun(table, result, thr, source)


def calibrate_threshold(data: str | os.PathLike, gallery: str | os.PathLike, model: ModelArg = None, *,
                        objective: str = "f1", far: float = 1e-3, which: str = "distorted",
                        detect: str | None = None, batch_size: int = 64, device: str = "auto",
                        on_total: Progress = None, on_progress: Progress = None) -> dict[str, Any]:
    """Choose the match threshold on labelled probes of identities in the gallery and store it there.

    ``objective`` "f1" maximises verification F1; "far" takes the lowest threshold whose false accept
    rate is at most ``far``. Returns the threshold, its source, and FAR, TAR and F1 at it.
    """
    from facecli.calibrate import calibrate_gallery

    _common(batch_size, detect)
    check_choice("objective", objective, OBJECTIVE_CHOICES)
    check_float("far", far, 0.0, 1.0)
    check_choice("which", which, PROBE_CHOICES)
    g = Gallery.load(gallery)
    m = _model(model, "identity", device)
    res = calibrate_gallery(m, g, Path(data), objective=objective, far=far, which=which, batch_size=batch_size,
                            detect=detect, on_total=on_total, on_progress=on_progress)
    Gallery.update(gallery, lambda current: current.meta.update(threshold=res["threshold"],
                                                                threshold_source=res["source"]))
    return res


def evaluate_identity(data: str | os.PathLike, model: ModelArg = None, *, out: str | os.PathLike = "eval-identity",
                      split: str | None = None, threshold: float | None = None, detect: str | None = None,
                      batch_size: int = 64, device: str = "auto", on_total: Progress = None,
                      on_progress: Progress = None) -> dict[str, Any]:
    """FACECOM's protocol (clean gallery, distorted probes), the cross-photo protocol (a probe's own photo
    is never in the gallery) and clean cross-photo, on a Task B-layout folder (its ``val/``, or ``split``).
    Writes per-protocol metrics, per-distortion CSVs, matches and plots into ``out``; returns
    {protocol: result}."""
    from facecli.evaluate import evaluate_identity as _evaluate

    _common(batch_size, detect)
    check_choice("split", split, SPLIT_CHOICES, optional=True)
    if threshold is not None:
        check_float("threshold", threshold, -1.0, 1.0)
    m = _model(model, "identity", device)
    return _evaluate(m, Path(data), Path(out), threshold=threshold, detect=detect, batch_size=batch_size,
                     split=split, on_total=on_total, on_progress=on_progress)
