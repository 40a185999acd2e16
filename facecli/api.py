"""The public Python API: verb-named functions over files, folders and in-memory images.

Everything the ``facecli`` command line does goes through these functions, so a script gets the same
behaviour, defaults and checks. Images are given as a folder (scanned recursively), a file path, an RGB
``numpy`` array (``H x W x 3`` uint8, as from Pillow, scikit-image or :func:`load_image`; grayscale and
RGBA also work), or a list of paths and arrays. A model is an :class:`~facecli.runtime.OnnxModel` from
:func:`load_model`, a path to an ONNX file from ``facecli export``, or None for the shipped model (for
matching: the model that built the gallery). Bad values raise :class:`~facecli.errors.FacecliError` with a
one-line message; an unreadable image inside a batch becomes a row with an ``error`` while the batch goes on.

Every verb that runs a model takes the run options of :class:`~facecli.options.RunOptions` as keywords
(``detect``, ``batch_size``, ``device``, ``workers``, ``on_total``, ``on_progress``) or as one
``options=RunOptions(...)`` value, and returns a result object with ``.table``, ``.summary_rows()`` and
``.save(path)``.

Example::

    import facecli

    img = facecli.load_image("photo.jpg")                  # RGB uint8 array
    faces = facecli.detect_faces(img)                      # boxes and five landmarks, largest first
    run = facecli.classify_images([img, "other.jpg"])      # run.table: one row per face: label, p_female, ...
    vectors = facecli.embed_images(img).vectors            # (1, 128) unit-length face embedding
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facecli.batch import Output, run_job
from facecli.card import resolve_threshold
from facecli.decision import decide
from facecli.errors import FacecliError
from facecli.gallery import Gallery
from facecli.gallery_store import LOCK_TIMEOUT
from facecli.inputs import in_memory, iter_inputs, nothing_found, path_sources
from facecli.options import PART_SIZE, Device, Layout, Objective, Probes, RunOptions, Split, Task, choices
from facecli.pipeline import ImageInput, load_input
from facecli.resolve import ModelArg, frame_gender, model_for_gallery, photo_model_for
from facecli.resolve import resolve_model as _model
from facecli.runtime import OnnxModel
from facecli.validate import check_choice, check_float, check_int

if TYPE_CHECKING:
    from facecli.classify import ClassifyRun
    from facecli.cluster import ClusterRun
    from facecli.cluster_eval import ClusterEval
    from facecli.evaluate import GenderEval, IdentityEval
    from facecli.recognise import Embedded, GalleryBuild, MatchRun

Images = ImageInput | Sequence[ImageInput]


# ------------------------------------------------------------------ models and images


def load_model(path: str | os.PathLike | None = None, task: str | None = None, *, device: str = "auto",
               options: RunOptions | None = None) -> OnnxModel:
    """Load a facecli ONNX model with its model card.

    ``path`` None loads the shipped model for ``task`` ("gender" or "identity"); with a path, ``task``
    (when given) must match the model's. ``device``: "auto" (default) runs on CUDA when ONNX Runtime can
    use a GPU and on the CPU otherwise; "cuda" fails with a clear error when it cannot; "cpu".
    ``model.describe()`` says which file, shipped or not, and which device. ``options`` (RunOptions), when
    given, sets the device and threads instead.
    """
    check_choice("device", device, choices(Device))
    check_choice("task", task, choices(Task), optional=True)
    return _model(path, task, options or RunOptions.of(device=device))


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an RGB uint8 array (EXIF orientation applied, huge JPEGs decoded reduced).

    Raises FacecliError for a missing, empty, truncated or undecodable file.
    """
    from facecli.decode import DecodeError, read_image

    try:
        return np.ascontiguousarray(read_image(path)[:, :, ::-1])
    except DecodeError as exc:
        raise FacecliError(f"{path}: {exc}") from None


def detect_faces(image: ImageInput, *, largest_only: bool = False, detector: str = "auto") -> list[Any]:
    """Faces in one image (a path or an RGB array), largest first; an empty list when there is none.

    Each :class:`~facecli.face.detectors.Face` has ``box`` (x, y, w, h), ``landmarks`` ((5, 2): left eye,
    right eye, nose tip, left and right mouth corner, in image pixels), ``score`` and ``status`` ("detected",
    or "fallback" for a degraded image whose face was placed by the framing). ``detector`` "auto" is MTCNN in
    ONNX Runtime; large images are searched on a downscaled copy and tight crops inside a padded canvas.
    """
    from facecli.decode import DecodeError
    from facecli.face.detectors import detect_faces as _detect
    from facecli.face.detectors import detector_names

    check_choice("detector", detector, detector_names())
    try:
        bgr = load_input(image)
    except DecodeError as exc:
        raise FacecliError(str(exc)) from None
    return _detect(bgr, detector, largest_only=largest_only)


# ------------------------------------------------------------------ gender


def classify_images(images: Images, model: ModelArg = None, *, threshold: float | None = None, frame: bool = True,
                    out: str | os.PathLike | None = None, resume: bool = False, raw: bool = False,
                    part_size: int = PART_SIZE, options: RunOptions | None = None, **run: Any) -> ClassifyRun:
    """Male/female for every face in ``images``: ``.table`` has one row per face, largest first within an image.

    Columns: path (relative to a scanned folder; ``<array N>`` for arrays), face, label, p_female,
    face_status, box ("x y w h"), landmarks ("x1 y1 ... x5 y5"), error. ``threshold`` on P(female)
    defaults to the one tuned on validation data and stored in the model. ``detect`` None uses the
    model's own setting (the shipped model detects and aligns faces); an image with no face gets one row
    with ``face_status`` "not_found" and no label. ``batch_size`` images go through the model at once.
    ``frame`` (default): where sun glare washed a face out, the whole frame's gender evidence is fused in
    (``evidence`` "face+frame"; :mod:`facecli.frame_gender`).

    With ``out`` (a .csv, .parquet or .jsonl file) and ``images`` given as paths (folders, files, "-" for
    paths on standard input, or a list of them), the run streams: rows are written in durable parts as it
    goes (:mod:`facecli.batch`; ``part_size`` inputs a part), memory stays flat, ``.table`` is None and
    ``.streamed`` says what was written; ``resume`` continues a killed run into the same ``out``. ``raw``
    keeps CSV cells that would start a formula as they are. The run option ``engine="ray"`` runs the parts
    on Ray (``address`` of a cluster, or a local instance; :mod:`facecli.engines`).
    """
    from facecli.classify import ClassifyRun
    from facecli.classify import classify_images as _classify
    from facecli.jobs import ClassifyJob

    opts = RunOptions.of(options, **run)
    m = _model(model, "gender", opts)
    thr, source = resolve_threshold(m.card, threshold)
    sources = path_sources(images)
    if out is not None and sources is not None:
        job = ClassifyJob(str(m.path), thr, frame, opts).load(m)
        info = {"command": "classify", "model": m.sha256, "threshold": thr, "frame": frame,
                "detect": opts.detect, "restore": opts.restore, "sources": [str(s) for s in sources]}
        done = run_job(job, sources, Output(out, raw, resume, part_size), info, opts)
        return ClassifyRun(None, done.images, thr, source, m.card.labels, streamed=done)
    if resume:
        raise FacecliError("resume needs out (the output of the interrupted run) and images given as paths")
    items, root = in_memory(images)
    opts.total(len(items))
    fg = frame_gender(opts) if frame else None
    res = ClassifyRun(_classify(m, items, root, thr, opts, fg), len(items), thr, source, m.card.labels)
    if out is not None:
        res.save(out, raw=raw)
    return res


def evaluate_gender(data: str | os.PathLike, model: ModelArg = None, *, out: str | os.PathLike | None = None,
                    split: str | None = None, threshold: float | None = None, frame: bool = True,
                    options: RunOptions | None = None, **run: Any) -> GenderEval:
    """Evaluate a gender model on a labelled folder (``male/`` and ``female/``, or a Task A folder's
    ``val/``; ``split="train"`` to use ``train/`` on purpose). Returns the scored predictions; ``out`` saves
    predictions.csv, metrics.json and plots there. The threshold defaults to the model's."""
    from facecli.evaluate import evaluate_gender as _evaluate
    from facecli.scan import gender_split_folder, scan_gender_folder

    opts = RunOptions.of(options, **run)
    check_choice("split", split, choices(Split), optional=True)
    m = _model(model, "gender", opts)
    thr, _ = resolve_threshold(m.card, threshold)
    root = gender_split_folder(data, split)
    paths, labels = scan_gender_folder(root)
    res = _evaluate(m, root, paths, labels, thr, opts, frame_gender(opts) if frame else None)
    if out is not None:
        res.save(out)
    return res


# ------------------------------------------------------------------ identity


def embed_images(images: Images, model: ModelArg = None, *, options: RunOptions | None = None, **run: Any) -> Embedded:
    """Unit-length face embeddings of ``images`` (the largest face of each), in input order.

    Returns an :class:`~facecli.recognise.Embedded`: ``vectors`` (N, D) float32 (NaN rows for inputs that
    failed), ``ok`` (N,) bool, ``failures`` {index: error} and ``face_status`` per input. Cosine
    similarity of two faces is the dot product of their vectors.
    """
    from facecli.recognise import embed_images as _embed

    opts = RunOptions.of(options, **run)
    m = _model(model, "identity", opts)
    items, _ = in_memory(images)
    return _embed(m, items, opts)


def check_lock_timeout(seconds: float) -> float:
    """``seconds`` when it is a usable lock timeout (0 to a day); FacecliError otherwise."""
    check_float("lock_timeout", seconds, 0.0, 86400.0)
    return float(seconds)


def _gallery(gallery: Any) -> Gallery:
    """A Gallery as given, or read from a folder path; FacecliError for anything else."""
    if isinstance(gallery, Gallery):
        return gallery
    if isinstance(gallery, str | os.PathLike):
        return Gallery.load(gallery)
    raise FacecliError(f"gallery must be a Gallery or a gallery folder, not {type(gallery).__name__}")


def load_gallery(path: str | os.PathLike) -> Gallery:
    """Read a gallery folder written by :func:`build_gallery`. Never waits for a writer: it reads the last
    version written, checked in full (FacecliError when missing, not a gallery, or corrupt)."""
    return Gallery.load(path)


def check_new_gallery(out: str | os.PathLike, root: str | os.PathLike, replace: bool = False) -> None:
    """FacecliError when ``out`` already holds a gallery and ``replace`` is False: building there would drop its
    identities (and a calibrated threshold); ``add_to_gallery`` adds to it."""
    meta = Path(out) / "gallery.json"
    if replace or not meta.exists():
        return
    try:
        n = len(Gallery.load(out).identities)
        held = f"{n:,} identit{'y' if n == 1 else 'ies'}"
    except FacecliError:
        held = "a gallery"
    raise FacecliError(f"{out} already holds {held}: add to it with 'facecli gallery add {root} -g {out}', or "
                       "build a new one over it with --replace")


def build_gallery(root: str | os.PathLike, model: ModelArg = None, *, out: str | os.PathLike | None = None,
                  per_image: bool = True, include_distorted: bool = False, photo: bool = True,
                  replace: bool = False, lock_timeout: float = LOCK_TIMEOUT, options: RunOptions | None = None,
                  **run: Any) -> GalleryBuild:
    """A gallery of the identities in ``root`` (``ROOT/<identity>/*.jpg``, clean photos), saved to ``out``
    when given. Returns the gallery with the report of images embedded, failures and skipped identities.

    ``per_image`` (default) keeps one vector per photo and scores an identity by its best photo; False
    keeps one template (mean embedding) per identity. ``include_distorted`` also embeds ``distortion/``.
    ``photo`` (default) also keeps photo evidence of every photo (the shipped photo matcher's vector and a
    64 x 64 thumbnail, about 6 KB a photo), so that degraded copies of gallery photos are recognised even
    where the face is gone (:mod:`facecli.photo`). ``lock_timeout``: seconds to wait for another writer of
    ``out`` before giving up (FacecliError). A gallery already at ``out`` is refused unless ``replace``.
    """
    from facecli.recognise import build_gallery as _build

    opts = RunOptions.of(options, **run)
    check_lock_timeout(lock_timeout)
    if out is not None:
        check_new_gallery(out, root, replace)
    m = _model(model, "identity", opts)
    pm = photo_model_for(None, options=opts) if photo else None
    built = _build(m, Path(root), opts, include_distorted=include_distorted, per_image=per_image, photo_model=pm)
    if out is not None:
        built.save(out, lock_timeout)
    return built


def add_to_gallery(gallery: str | os.PathLike, root: str | os.PathLike, model: ModelArg = None, *,
                   include_distorted: bool = False, lock_timeout: float = LOCK_TIMEOUT,
                   options: RunOptions | None = None, **run: Any) -> GalleryBuild:
    """Add (or replace) the identities under ``root`` in the gallery folder ``gallery``, without
    re-embedding the others. Safe to run several at once. Returns the saved gallery with the identities
    ``added`` and ``replaced``. ``model`` None uses the model that built the gallery. Another writer of the
    gallery is waited for at most ``lock_timeout`` seconds (then FacecliError); readers never wait."""
    from facecli.recognise import add_to_gallery as _add

    opts = RunOptions.of(options, **run)
    g = Gallery.load(gallery)
    m = model_for_gallery(g, model, options=opts)
    return _add(m, Path(gallery), Path(root), opts, include_distorted=include_distorted,
                photo_model=photo_model_for(g, options=opts), lock_timeout=check_lock_timeout(lock_timeout))


def rebuild_gallery(gallery: str | os.PathLike, model: ModelArg = None, *, lock_timeout: float = LOCK_TIMEOUT,
                    options: RunOptions | None = None, **run: Any) -> GalleryBuild:
    """Embed the gallery folder ``gallery`` again from the photo folders it records (the one it was built from,
    then each one added, in order), with ``model`` (default: the shipped identity model, not the one that built
    it), keeping its mode (per photo or templates) and photo evidence, and save it there as one new version.

    This is what a new model version asks for: its embeddings differ, so a gallery built with the old one is
    refused until it is rebuilt. The gallery's threshold becomes the new model's own; one calibrated for the old
    model does not carry over (calibrate again). FacecliError when the gallery records no folder or a recorded
    folder is gone (then ``build_gallery(..., replace=True)``).
    """
    from facecli.recognise import rebuild_gallery as _rebuild

    opts = RunOptions.of(options, **run)
    check_lock_timeout(lock_timeout)
    g = Gallery.load(gallery)
    m = _model(model, "identity", opts)
    return _rebuild(m, g, Path(gallery), opts, photo_model=photo_model_for(None, options=opts) if g.photos else None,
                    lock_timeout=lock_timeout)


def match_probes(probes: Images, gallery: Gallery | str | os.PathLike, model: ModelArg = None, *,
                 threshold: float | None = None, fpir: float | None = None, top_k: int = 5,
                 which: str = "distorted", layout: str = "auto",
                 out: str | os.PathLike | None = None, resume: bool = False, raw: bool = False,
                 report: str | os.PathLike | None = None, plots: bool = False, part_size: int = PART_SIZE,
                 options: RunOptions | None = None, **run: Any) -> MatchRun:
    """Who each probe is: the nearest gallery identity when its similarity reaches the threshold, else
    "unknown".

    ``probes``: a folder in the identity layout (``ROOT/<identity>/distortion/``: the true identity is
    then known and the result is scored; ``which`` picks distorted, clean or all images), any folder of
    images (``layout="plain"``; "auto" takes the identity layout only when the folder has it), files, "-"
    (paths on standard input), a list of them, or images and arrays. ``model`` None uses the model that
    built the gallery. The decision (:func:`facecli.decision.decide`): ``threshold`` is a raw score; else
    ``fpir``, the share of strangers to accept (default 1%), sets it through the model's false-match curve
    for this gallery's size (a stranger is compared with every photo in it); a threshold stored by
    ``calibrate`` applies when neither is given. ``top_k`` nearest identities are listed.

    With ``out`` (.csv, .parquet or .jsonl) and probes without ground truth given as paths, the run streams
    into ``out`` in durable parts (``.table`` is None, ``.streamed`` says what was written; ``resume``
    continues a killed run); probes with ground truth are matched in one piece (the metrics need them all)
    and saved to ``out`` with their report (``report``: its folder, default ``<out stem>_report``; ``plots``:
    also the PNGs).
    """
    from facecli.jobs import MatchJob
    from facecli.recognise import MatchRun

    opts = RunOptions.of(options, **run)
    check_int("top_k", top_k, 1, 1000)
    check_choice("which", which, choices(Probes))
    check_choice("layout", layout, choices(Layout))
    g = _gallery(gallery)
    m = model_for_gallery(g, model, options=opts)
    pm = photo_model_for(g, options=opts)
    dec = decide(m.card, threshold=threshold, fpir=fpir, comparisons=len(g.rows),
                 stored=g.calibrated_threshold(m.card.score_scale))
    thr = dec.threshold
    sources = path_sources(probes)
    scored = sources is not None and _identity_layout(sources, which, layout)
    if out is not None and sources is not None and not scored:
        job = MatchJob(str(m.path), g, dec, top_k, opts).load(m, pm)
        info = {"command": "match", "model": m.sha256, "gallery": g.meta.get("updated"), "threshold": thr,
                "top_k": top_k, "detect": opts.detect, "restore": opts.restore,
                "sources": [str(s) for s in sources]}
        done = run_job(job, sources, Output(out, raw, resume, part_size), info, opts)
        return MatchRun(None, None, dec, g.evidence, streamed=done)
    if resume:
        raise FacecliError("resume applies to a match streamed into out: probes without ground truth, given as "
                           "paths (a scored match runs in one piece)")
    table, result = _match_in_memory(m, g, probes, sources, scored, thr, opts, which, top_k, pm)
    if result is not None:
        result.metrics.update(threshold_source=dec.source, predicted_fpir=dec.fpir)
    res = MatchRun(table, result, dec, g.evidence)
    if out is not None:
        res.save(out, report, plots=plots, raw=raw,
                 extra={"probes": [str(s) for s in sources] if sources else None, "gallery": str(gallery)
                        if isinstance(gallery, str | os.PathLike) else None})
    return res


def _match_in_memory(m: OnnxModel, g: Gallery, probes: Images, sources: list | None, scored: bool, thr: float,
                     opts: RunOptions, which: str, top_k: int, pm: OnnxModel | None) -> tuple[Any, Any]:
    """A match held in memory: an identity folder scored against its ground truth, path sources listed in
    input order, or arrays."""
    from facecli.recognise import match_folder, match_images

    if scored:
        return match_folder(m, g, Path(sources[0]), thr, opts, which=which, layout="identity", top_k=top_k,
                            photo_model=pm)
    if sources is not None:
        named = list(iter_inputs(sources))
        if not named:
            raise nothing_found(sources)
        opts.total(len(named))
        return match_images(m, g, [n.item for n in named], thr, opts, names=[n.name for n in named], top_k=top_k,
                            photo_model=pm)
    items, root = in_memory(probes)
    opts.total(len(items))
    return match_images(m, g, items, thr, opts, root=root, top_k=top_k, photo_model=pm)


def _identity_layout(sources: list, which: str, layout: str) -> bool:
    """Whether path ``sources`` are read in the identity layout: one folder that has it (``layout`` auto), or
    ``layout`` identity (which needs exactly one folder)."""
    from facecli.scan import has_identity_layout

    one_dir = len(sources) == 1 and os.fspath(sources[0]) != "-" and Path(sources[0]).is_dir()
    if layout == "identity":
        if not one_dir:
            raise FacecliError("--layout identity reads one folder ROOT/<identity>/[distortion/]; give one folder")
        return True
    return layout == "auto" and one_dir and has_identity_layout(Path(sources[0]), distorted=which == "distorted")


def verify(a: ImageInput, b: ImageInput, model: ModelArg = None, *, threshold: float | None = None,
           fmr: float | None = None, photo: bool = True, options: RunOptions | None = None, **run: Any) -> Any:
    """Are ``a`` and ``b`` (files or RGB arrays) the same person? Returns a :class:`~facecli.verification.Verdict`:
    ``same``, ``similarity`` (a score in [0, 1] on the model's scale), the ``threshold`` used and its source
    (``threshold``, a raw score; else ``fmr``, the share of different-person pairs to accept, default 1e-3,
    through the model's false-match curve), the false-match rates at the threshold and at the similarity,
    the ``evidence`` that decided (face, photo or both) and each photo's ``face_status``. ``photo`` (default)
    also tests whether ``b`` is a degraded copy of ``a`` (:mod:`facecli.photo`), as a gallery built with photo
    evidence does. FacecliError when either photo cannot be read.
    """
    from facecli.verification import verify_pair

    opts = RunOptions.of(options, **run)
    for x in (a, b):
        if isinstance(x, str | os.PathLike) and not Path(x).is_file():
            raise FacecliError(f"not a file: {x}")
    m = _model(model, "identity", opts)
    dec = decide(m.card, threshold=threshold, fmr=fmr)
    pm = photo_model_for(None, options=opts) if photo else None
    return verify_pair(m, a, b, dec, opts, pm)


def read_results(path: str | os.PathLike) -> Any:
    """A results file written by ``classify``, ``match`` or ``cluster`` (.csv, .parquet or .jsonl) as a pandas
    DataFrame with the same values whatever the format: ``box``, ``landmarks``, ``top_k`` and
    ``top_k_similarity`` as lists (None where blank); ``face``, ``p_female``, ``similarity``, ``accepted``,
    ``cluster``, ``cluster_size``, ``confidence`` as nullable numbers and booleans (``<NA>`` in the rows of files
    that failed); names and other text as written (CSV's guard against spreadsheet formulas undone)."""
    from facecli.outputs import read_results_table

    if not Path(path).is_file():
        raise FacecliError(f"not found: {path}")
    return read_results_table(path)


def calibrate_threshold(data: str | os.PathLike, gallery: str | os.PathLike, model: ModelArg = None, *,
                        objective: str = "f1", far: float = 1e-3, which: str = "distorted",
                        lock_timeout: float = LOCK_TIMEOUT, options: RunOptions | None = None,
                        **run: Any) -> dict[str, Any]:
    """Choose the match threshold on labelled probes of identities in the gallery and store it there.

    ``objective`` "f1" maximises verification F1; "far" takes the lowest threshold whose false accept
    rate is at most ``far``. Returns the threshold, its source, and FAR, TAR and F1 at it.
    """
    from facecli.calibrate import calibrate_gallery

    opts = RunOptions.of(options, **run)
    check_choice("objective", objective, choices(Objective))
    check_float("far", far, 0.0, 1.0)
    check_choice("which", which, choices(Probes))
    g = Gallery.load(gallery)
    m = model_for_gallery(g, model, options=opts)
    res = calibrate_gallery(m, g, Path(data), opts, objective=objective, far=far, which=which,
                            photo_model=photo_model_for(g, options=opts))
    scale = m.card.score_scale
    Gallery.update(gallery, lambda current: current.meta.update(
        threshold=res["threshold"], threshold_source=res["source"], threshold_calibrated=True,
        score_scale=None if scale is None else scale.to_dict()), check_lock_timeout(lock_timeout))
    return res


def evaluate_identity(data: str | os.PathLike, model: ModelArg = None, *, out: str | os.PathLike | None = None,
                      split: str | None = None, threshold: float | None = None, fpir: float | None = None,
                      photo: bool = True,
                      options: RunOptions | None = None, **run: Any) -> IdentityEval:
    """FACECOM's protocol (clean gallery, distorted probes), the cross-photo protocol (a probe's own photo
    is never in the gallery) and clean cross-photo, on a Task B-layout folder (its ``val/``, or ``split``).
    Returns the result per protocol; ``out`` saves per-protocol metrics, per-distortion CSVs, matches and
    plots there. ``photo`` (default) weighs photo evidence beside face evidence, as a gallery built with it
    does in ``match``."""
    from facecli.evaluate import evaluate_identity as _evaluate
    from facecli.scan import identity_split_folder

    opts = RunOptions.of(options, **run)
    check_choice("split", split, choices(Split), optional=True)
    m = _model(model, "identity", opts)
    res = _evaluate(m, identity_split_folder(data, split), threshold, opts,
                    photo_model=photo_model_for(None, options=opts) if photo else None, fpir=fpir)
    if out is not None:
        res.save(out)
    return res


# ------------------------------------------------------------------ clustering


def cluster_faces(images: Images, model: ModelArg = None, *, threshold: float | None = None,
                  fmr: float | None = None, gallery: Gallery | str | os.PathLike | None = None,
                  fpir: float | None = None, photo: bool = True, out: str | os.PathLike | None = None,
                  resume: bool = False, raw: bool = False, part_size: int = PART_SIZE,
                  options: RunOptions | None = None, **run: Any) -> ClusterRun:
    """Group every face in ``images`` by person, without names (:mod:`facecli.cluster`).

    ``.table`` has one row per face: path, face, cluster (1 = largest; singletons last), name (person_0001,
    ..., "singleton", or a gallery identity), cluster_size, confidence (the face's average score against the
    rest of its cluster), evidence (face, or photo for a degraded copy joined to its source photo's cluster),
    face_status, restored, box, error. Faces link when their clusters' average score reaches the threshold:
    ``threshold`` (a raw score), else ``fmr`` (false-match rate of one comparison through the model's curve,
    default :data:`facecli.cluster.CLUSTER_FMR`). ``gallery`` names clusters whose faces it recognises (at
    ``fpir``, as ``match`` decides). ``photo`` (default) joins washed-out faces to the photos they are copies of
    and keeps a photo's degraded copies in one cluster.

    With ``out`` and ``images`` given as paths the embedding streams in durable parts like ``classify``
    (``resume`` continues a killed run, ``engine="ray"`` runs it on Ray) and the grouping runs once at the end.
    """
    from facecli.cluster import ClusterJob, ClusterRun, embed_faces, group_table, join_parts, write_part

    opts = RunOptions.of(options, **run)
    m = _model(model, "identity", opts)
    how = _grouping(m, threshold, fmr, gallery, fpir, opts)
    pm = photo_model_for(None, options=opts) if photo else None
    dim = m.card.embedding_dim or 128
    sources = path_sources(images)
    if out is not None and sources is not None:
        from facecli.batch import Parts

        job = ClusterJob(str(m.path), photo, opts).load(m, pm)
        info = {"command": "cluster", "model": m.sha256, "threshold": how.decision.threshold, "photo": photo,
                "gallery": None if how.gallery is None else how.gallery.meta.get("updated"),
                "detect": opts.detect, "restore": opts.restore, "sources": [str(s) for s in sources]}
        join = join_parts(how, dim, raw)
        done = run_job(job, sources, Output(out, raw, resume, part_size), info, opts, Parts(write_part, join, ".jsonl"))
        return ClusterRun(join.table, done.images, how.decision, streamed=done)
    if resume:
        raise FacecliError("resume needs out (the output of the interrupted run) and images given as paths")
    named = _named(images)
    opts.total(len(named))
    table = embed_faces(m, pm, [n[0] for n in named], [n[1] for n in named], opts)
    res = ClusterRun(group_table(table, dim, how), len(named), how.decision)
    if out is not None:
        res.save(out, raw=raw)
    return res


def _grouping(m: OnnxModel, threshold: float | None, fmr: float | None, gallery: Any, fpir: float | None,
              opts: RunOptions) -> Any:
    """The linkage decision (its score and cosine) and the gallery that names clusters."""
    from facecli.cluster import CLUSTER_FMR, Grouping

    dec = decide(m.card, threshold=threshold, fmr=CLUSTER_FMR if fmr is None and threshold is None else fmr)
    if fmr is None and threshold is None and dec.source.startswith("--fmr"):  # not given: say it is the default
        dec = dataclasses.replace(dec, source="cluster default " + dec.source.removeprefix("--"))
    scale = m.card.score_scale
    cosine = scale.cosine(dec.threshold) if scale is not None else dec.threshold
    g = name_dec = None
    if gallery is not None:
        g = _gallery(gallery)
        model_for_gallery(g, m, options=opts)  # the gallery must have been built by this model
        name_dec = decide(m.card, fpir=fpir, comparisons=len(g.rows),
                          stored=g.calibrated_threshold(scale))
    elif fpir is not None:
        raise FacecliError("fpir applies to naming clusters with a gallery; give gallery too")
    return Grouping(dec, float(cosine), scale, g, name_dec)


def _named(images: Images) -> list[tuple[ImageInput, str]]:
    """Inputs in memory or as paths, each with the name its rows carry."""
    from facecli.scan import input_name

    sources = path_sources(images)
    if sources is not None:
        named = [(n.item, n.name) for n in iter_inputs(sources)]
        if not named:
            raise nothing_found(sources)
        return named
    items, root = in_memory(images)
    return [(it, input_name(it, i, root)) for i, it in enumerate(items)]


def evaluate_cluster(data: str | os.PathLike, model: ModelArg = None, *, out: str | os.PathLike | None = None,
                     split: str | None = None, threshold: float | None = None, fmr: float | None = None,
                     photo: bool = True, exclude: Sequence[str] = (), options: RunOptions | None = None,
                     **run: Any) -> ClusterEval:
    """Cluster every image of an identity-layout folder (a Task B folder's ``val/``, or ``split``) as
    :func:`cluster_faces` would, and score the clusters against the identities: BCubed and pairwise precision,
    recall and F, clusters against people, per distortion kind (:mod:`facecli.cluster_eval`). ``exclude``
    leaves distortion kinds out (e.g. ``["sunny"]``). ``out`` saves clusters.csv, metrics.json and
    per_distortion.csv there."""
    from facecli.cluster import embed_faces, group_table
    from facecli.cluster_eval import labelled_inputs, per_row, score_clusters
    from facecli.scan import identity_split_folder

    opts = RunOptions.of(options, **run)
    check_choice("split", split, choices(Split), optional=True)
    m = _model(model, "identity", opts)
    how = _grouping(m, threshold, fmr, None, None, opts)
    root = identity_split_folder(data, split)
    paths, names, identities, kinds = labelled_inputs(root, tuple(exclude))
    if not paths:
        raise FacecliError(f"{root}: no images left to cluster (every kind excluded?)")
    opts.total(len(paths))
    pm = photo_model_for(None, options=opts) if photo else None
    table = group_table(embed_faces(m, pm, paths, names, opts), m.card.embedding_dim or 128, how)
    table["true_identity"] = per_row(identities, names, table)
    table["distortion"] = per_row(kinds, names, table)
    res = score_clusters(table, str(root), how.decision)
    if out is not None:
        res.save(out)
    return res
