"""Face recognition verbs: embed images, build or extend a gallery from identity folders, match probes.

Each verb trusts what :mod:`facecli.api` resolved: the model (task checked), the threshold and the
:class:`~facecli.options.RunOptions`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from facecli.batch import Streamed, TableRun
from facecli.decision import Decision
from facecli.errors import FacecliError
from facecli.gallery import Gallery, PhotoSet, build_templates, recorded_sources, source_record
from facecli.gallery_store import LOCK_TIMEOUT
from facecli.options import RunOptions
from facecli.photo import PhotoEvidence, PhotoStage
from facecli.pipeline import Crop, Extra, ImageInput, run_model
from facecli.protocols import Evidence, MatchResult, match_embeddings
from facecli.runtime import OnnxModel
from facecli.scan import IdentityImage, has_identity_layout, input_name, rel, require_dir, scan_identity_folder, scan_images


@dataclass
class Embedded:
    """Embeddings of a list of files: rows of failed files are NaN and listed in ``failures``."""

    vectors: np.ndarray
    ok: np.ndarray
    failures: dict[int, str]
    face_status: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # what restoration did to each image


def embed_images(model: OnnxModel, paths: Sequence[ImageInput], run: RunOptions, *, extra: Extra = None,
                 on_batch: Callable[[list[Crop], np.ndarray], None] | None = None) -> Embedded:
    """L2-normalised embeddings of ``paths`` (largest face when detecting), in input order (``extra`` and
    ``on_batch``: see :func:`facecli.pipeline.run_model`)."""
    res = run_model(model, paths, run, extra=extra, on_batch=on_batch)
    dim = int(model.card.embedding_dim or (res.outputs.shape[1] if res.outputs.ndim == 2 else 512))
    vec = np.full((len(paths), dim), np.nan, np.float32)
    status = [""] * len(paths)
    restored = [""] * len(paths)
    for crop, v in zip(res.crops, res.outputs, strict=True):
        vec[crop.index] = v
        status[crop.index] = crop.face_status
        restored[crop.index] = crop.restored
    ok = ~np.isnan(vec[:, 0]) if len(paths) else np.zeros(0, bool)
    return Embedded(vec, ok, res.failures, status, restored)


@dataclass
class GalleryReport:
    """What went into a gallery build."""

    identities: int
    images: int
    failures: dict[str, str]  # path -> error
    skipped_identities: list[str]  # no usable clean image
    without_face: int = 0  # photos in which no face was found: photo evidence only (their face vector is zero)


@dataclass
class GalleryBuild:
    """The outcome of :func:`facecli.build_gallery` or :func:`facecli.add_to_gallery`: the ``gallery``, the
    ``report`` of what went in, and for an add the identities ``added`` and ``replaced``."""

    gallery: Gallery
    report: GalleryReport
    added: int | None = None
    replaced: int | None = None
    decision: Decision | None = None  # the threshold match takes by default for this gallery

    @property
    def table(self) -> pd.DataFrame:
        """One row per identity in the gallery: identity, images."""
        import pandas as pd
        counts = self.gallery.meta.get("image_counts", {})
        return pd.DataFrame({"identity": self.gallery.identities,
                             "images": [counts.get(i, 0) for i in self.gallery.identities]})

    def summary_rows(self) -> list[tuple[str, Any]]:
        """What the build or add put in, and what the gallery now holds."""
        from facecli.summary import gallery_rows

        rows = gallery_rows(self.report, self.gallery, self.decision.rows() if self.decision else ())
        if self.added is not None:
            rows[:1] = [("identities added", self.added), ("identities replaced", self.replaced)]
        return rows

    def save(self, folder: str | os.PathLike, lock_timeout: float = LOCK_TIMEOUT) -> Path:
        """Write the gallery folder as one new version (atomically, under the writer lock, waiting at most
        ``lock_timeout`` seconds for another writer)."""
        self.gallery.save(folder, lock_timeout)
        return Path(folder)


def gallery_items(root: Path, include_distorted: bool = False) -> tuple[list[IdentityImage], list[str]]:
    """The images a gallery is built from (clean ones; distorted too when asked) and the identities that
    have none (empty folders or folders with only distorted images)."""
    root = require_dir(root, "identity folder")
    all_dirs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not all_dirs:
        raise FacecliError(f"{root} holds no identity folders (expected ROOT/<identity>/*.jpg)")
    try:
        items = scan_identity_folder(root)
    except FacecliError:
        items = []
    chosen = [it for it in items if include_distorted or not it.distortion]
    have = {it.identity for it in chosen}
    missing = [d for d in all_dirs if d not in have]
    if not chosen:
        raise FacecliError(f"no identity under {root} has a clean image (ROOT/<identity>/*.jpg)")
    return chosen, missing


def embed_identities(model: OnnxModel, root: Path, run: RunOptions, *, include_distorted: bool = False,
                     per_image: bool = False, photo_model: OnnxModel | None = None
                     ) -> tuple[list[str], np.ndarray, dict[str, int], GalleryReport, PhotoSet | None]:
    """Embed the gallery images of every identity folder under ``root``, and with ``photo_model`` their photo
    evidence (:func:`photo_set`).

    Returns (row identities, vectors, image count per identity, report, photo set or None). One template per
    identity (mean of normalised embeddings, re-normalised) unless ``per_image``.
    """
    items, missing = gallery_items(root, include_distorted)
    run.total(len(items))
    collect = None if photo_model is None else PhotoCollector(photo_model)
    emb = embed_images(model, [it.path for it in items], run, extra=collect.inputs if collect else None,
                       on_batch=collect.batch if collect else None)
    ok_items = [it for it, ok in zip(items, emb.ok, strict=True) if ok]
    failures = {rel(items[i].path, root): e for i, e in emb.failures.items()}
    lost = sorted({it.identity for it in items} - {it.identity for it in ok_items})
    if not ok_items:
        raise FacecliError(f"no gallery image under {root} could be read")
    ids = [it.identity for it in ok_items]
    # a photo with no face found gives no face evidence: its vector is zero (it matches nothing on the face; the
    # centred crop of a non-face would otherwise look like a face to the model), photo evidence still names it
    no_face = np.array([s == "not_found" for s, ok in zip(emb.face_status, emb.ok, strict=True) if ok], bool)
    vecs = np.where(no_face[:, None], 0.0, emb.vectors[emb.ok]).astype(np.float32)
    if per_image:
        rows, vectors = ids, vecs
        counts = dict(Counter(ids))
    else:
        rows, vectors, cnt = build_templates(vecs, ids)
        counts = dict(zip(rows, cnt, strict=True))
    report = GalleryReport(len(set(rows)), len(ok_items), failures, sorted(missing + lost), int(no_face.sum()))
    photos = None if collect is None else collect.photo_set(items, [i for i, ok in enumerate(emb.ok) if ok])
    return rows, vectors, counts, report, photos


class PhotoCollector:
    """The photo evidence of gallery images, gathered while their faces are embedded (each image decoded once):
    ``inputs`` (the pipeline's ``extra`` hook) is the photo stage's view of each decoded image, ``batch`` (its
    ``on_batch``) runs the photo matcher on a batch's views."""

    def __init__(self, photo_model: OnnxModel) -> None:
        self.model = photo_model
        self.stage = PhotoStage(photo_model, probe=False)
        self.inputs = self.stage.view
        self.vectors: dict[int, np.ndarray] = {}
        self.thumbs: dict[int, np.ndarray] = {}

    def batch(self, crops: list[Crop], _: np.ndarray) -> None:
        firsts = [c for c in crops if c.extra is not None]
        for c, v in zip(firsts, self.stage.embed([c.extra for c in firsts]), strict=True):
            self.vectors[c.index], self.thumbs[c.index] = v, c.extra.thumb

    def photo_set(self, items: Sequence[IdentityImage], ok: Sequence[int]) -> PhotoSet:
        """The photo set of ``items[i]`` for the indices ``ok`` (read ones), in that order."""
        keep = [i for i in ok if i in self.vectors]
        dim = int(self.model.card.embedding_dim or 512)
        vec = np.stack([self.vectors[i] for i in keep]).astype(np.float32) if keep else np.zeros((0, dim), np.float32)
        thumb = np.stack([self.thumbs[i] for i in keep]) if keep else np.zeros((0, 64, 64), np.uint8)
        return PhotoSet([items[i].identity for i in keep], vec, thumb, model_info(self.model))


def model_info(model: OnnxModel) -> dict[str, Any]:
    """How a gallery records the model that embedded it."""
    return {"sha256": model.sha256, "path": str(model.path), "backbone": model.card.backbone,
            "preprocessing": model.card.preprocessing.to_dict(), "embedding_dim": model.card.embedding_dim,
            "embeds_like": list(model.card.embeds_like)}


def build_gallery(model: OnnxModel, root: Path, run: RunOptions, *, include_distorted: bool = False,
                  per_image: bool = True, photo_model: OnnxModel | None = None) -> GalleryBuild:
    """A new gallery from the clean images of each identity folder under ``root`` (see embed_identities),
    with photo evidence when a ``photo_model`` is given."""
    rows, vectors, counts, report, photos = embed_identities(model, root, run, include_distorted=include_distorted,
                                                             per_image=per_image, photo_model=photo_model)
    scale = model.card.score_scale
    gallery = Gallery.create(rows, vectors, counts, model_info(model), model.card.threshold, per_image=per_image,
                             score_scale=None if scale is None else scale.to_dict(), photos=photos)
    gallery.meta["source"] = str(root)
    gallery.meta["sources"] = [source_record(root, include_distorted)]
    return GalleryBuild(gallery, report, decision=default_decision(model, gallery))


def default_decision(model: OnnxModel, gallery: Gallery) -> Decision:
    """The threshold ``match`` takes for ``gallery`` when none is asked for (:func:`facecli.decision.decide`)."""
    from facecli.decision import decide

    return decide(model.card, comparisons=len(gallery.rows), stored=gallery.calibrated_threshold(model.card.score_scale))


def add_to_gallery(model: OnnxModel, gallery_dir: Path, root: Path, run: RunOptions, *,
                   include_distorted: bool = False, photo_model: OnnxModel | None = None,
                   lock_timeout: float = LOCK_TIMEOUT) -> GalleryBuild:
    """Add the identities under ``root`` to the gallery in ``gallery_dir``, replacing those already in it,
    without re-embedding the others. Returns the saved gallery with the identities added and replaced.

    The images are embedded first, in the gallery's own mode (one vector per photo or one template per
    identity); then the gallery is re-read, changed and saved under its lock, so several runs adding at
    the same time all land. Refuses a model other than the one that built the gallery. A gallery with photo
    evidence needs its ``photo_model`` to add photos.
    """
    current = Gallery.load(gallery_dir)
    current.check_model(model.sha256, model.path, model.card.embeds_like)
    if current.photos is not None and photo_model is None:
        raise FacecliError(f"gallery {gallery_dir} keeps photo evidence: its photo matcher "
                           f"({current.photos.model.get('path')}) is needed to add photos")
    rows, vecs, counts, report, photos = embed_identities(
        model, root, run, include_distorted=include_distorted, per_image=bool(current.meta.get("per_image")),
        photo_model=photo_model if current.photos is not None else None)

    def add(g: Gallery) -> tuple[int, int]:
        g.check_model(model.sha256, model.path, model.card.embeds_like)
        g.meta["sources"] = [*recorded_sources(g.meta), source_record(root, include_distorted)]
        return g.upsert(rows, vecs, counts, photos)

    saved, (added, replaced) = Gallery.update(gallery_dir, add, lock_timeout)
    return GalleryBuild(saved, report, added, replaced, default_decision(model, saved))


def rebuild_gallery(model: OnnxModel, current: Gallery, gallery_dir: Path, run: RunOptions, *,
                    photo_model: OnnxModel | None = None, lock_timeout: float = LOCK_TIMEOUT) -> GalleryBuild:
    """Embed again, with ``model``, the folders the gallery in ``gallery_dir`` was built and added from (as it
    recorded them, in order: a later folder's identities replace an earlier one's), in the gallery's own mode,
    and save the result there as one new version. For a new model version, whose embeddings differ: the
    gallery's threshold becomes ``model``'s own (a threshold calibrated for the old model does not carry over).
    ``current`` is that gallery as read; one with photo evidence needs its ``photo_model``."""
    sources = recorded_sources(current.meta)
    if not sources:
        raise FacecliError(f"gallery {gallery_dir} does not record the folders it was built from: build it again "
                           f"with 'facecli gallery build ROOT -g {gallery_dir} --replace'")
    gone = [s["root"] for s in sources if not Path(s["root"]).is_dir()]
    if gone:
        raise FacecliError(f"gallery {gallery_dir} was built from {gone[0]}, which is not a folder any more: "
                           f"build it again with 'facecli gallery build ROOT -g {gallery_dir} --replace'")
    if current.photos is not None and photo_model is None:
        raise FacecliError(f"gallery {gallery_dir} keeps photo evidence: its photo matcher is needed to rebuild it")
    pm = photo_model if current.photos is not None else None
    per_image = bool(current.meta.get("per_image"))
    first, *rest = sources
    built = build_gallery(model, Path(first["root"]), run, include_distorted=first["include_distorted"],
                          per_image=per_image, photo_model=pm)
    g, report = built.gallery, built.report
    for s in rest:
        rows, vecs, counts, more, photos = embed_identities(model, Path(s["root"]), run, per_image=per_image,
                                                            include_distorted=s["include_distorted"], photo_model=pm)
        g.upsert(rows, vecs, counts, photos)
        report = GalleryReport(len(g.identities), report.images + more.images, {**report.failures, **more.failures},
                               sorted({*report.skipped_identities, *more.skipped_identities}),
                               report.without_face + more.without_face)
    g.meta["source"], g.meta["sources"] = current.meta.get("source", first["root"]), sources
    g.save(gallery_dir, lock_timeout)
    return GalleryBuild(g, report, decision=default_decision(model, g))


def probe_items(folder: Path, which: str = "distorted", layout: str = "auto") -> tuple[list[Path], list[str] | None,
                                                                                          list[str] | None]:
    """Probe files of ``folder`` with their true identity and distortion kind when the layout tells them.

    ``layout`` "identity" reads ``ROOT/<identity>/[distortion/]`` ("auto" decides by looking); "plain"
    takes every image with no ground truth. ``which`` (identity layout only): distorted, clean or all.
    """
    root = require_dir(folder, "probe folder")
    if layout == "auto":
        layout = "identity" if has_identity_layout(root, distorted=which == "distorted") else "plain"
    if layout == "plain":
        return scan_images(root), None, None
    items = scan_identity_folder(root)
    keep = [it for it in items if which == "all" or (which == "distorted") == bool(it.distortion)]
    if not keep:
        raise FacecliError(f"no {which} probe images under {root} (the identity layout reads ROOT/<identity>/"
                           "distortion/; use --probes clean|all for the clean photos, or --layout plain for any "
                           "folder of images)")
    return [it.path for it in keep], [it.identity for it in keep], [it.distortion or "clean" for it in keep]


MATCH_COLUMNS = ["path", "identity", "similarity", "accepted", "nearest", "top_k", "top_k_similarity", "evidence",
                 "face_status", "restored", "error"]  # the columns of a match without ground truth
STRANGER_WARNING = 0.2  # warn when a threshold lets at least this share of strangers in


@dataclass
class MatchRun(TableRun):
    """The outcome of :func:`facecli.match_probes`: one table row per probe, the scored ``result`` when the
    ground truth is known (else None), and the ``decision``: the threshold used, where it came from and what
    it means for this gallery (:class:`facecli.decision.Decision`)."""

    table: pd.DataFrame | None  # None for a run streamed into a file (see ``streamed``)
    result: MatchResult | None
    decision: Decision
    gallery_evidence: str = "face"  # what the gallery holds: "face and photo", or "face"
    streamed: Streamed | None = None
    report_dir: Path | None = None  # where :meth:`save` wrote the report (runs with ground truth)

    @property
    def threshold(self) -> float:
        """The threshold applied (a score on the model's scale)."""
        return self.decision.threshold

    @property
    def threshold_source(self) -> str:
        """Where the threshold came from, in words."""
        return self.decision.source

    def summary_rows(self) -> list[tuple[str, Any]]:
        """Probes, accepted, unknown, evidence and face status counts, files that failed, the threshold, its
        source and what it means (and, for a resumed run, how many probes the interrupted run had done)."""
        from facecli.summary import match_rows, streamed_rows

        if self.streamed is not None:
            return streamed_rows(self.streamed)[1:]  # the parts' own "probes" row counts them (one row a probe)
        return match_rows(self.table, self.decision.rows(), self.gallery_evidence)

    @property
    def note(self) -> str:
        """The open-set note of a run with ground truth (what its stranger figures mean), else ""."""
        from facecli.summary import open_set_note

        return open_set_note(self.result.metrics) if self.result is not None else ""

    @property
    def warnings(self) -> list[str]:
        """One-line warnings about this run: a threshold that lets most strangers in, a face-only gallery."""
        out = []
        fpir = self.decision.fpir
        if fpir is not None and fpir >= STRANGER_WARNING:
            out.append(f"warning: threshold {self.threshold:g} accepts about {fpir:.0%} of strangers for this "
                       f"gallery of {self.decision.comparisons:,} photos (the model's false-match curve); the "
                       "default (--fpir 0.01) is far safer")
        if self.gallery_evidence == "face":
            out.append("note: this gallery keeps face evidence only (built before photo evidence or with "
                       "--no-photo); rebuild it to recognise degraded copies of its photos")
        return out

    def save(self, out: str | os.PathLike, report: str | os.PathLike | None = None, plots: bool = False,
             extra: dict[str, Any] | None = None, raw: bool = False) -> Path | None:
        """Write the CSV to ``out`` and, with ground truth, the report folder (default: ``<out stem>_report``
        next to it; metrics.json, per_distortion.csv, and with ``plots`` the histogram and ROC PNGs). A
        report folder never mixes runs: plots of an older run are removed when ``plots`` is off. Returns
        the report folder, or None without ground truth. Text cells that would start a spreadsheet formula
        get a leading ``'`` unless ``raw`` (:mod:`facecli.outputs`)."""
        from facecli.report import write_identity_report

        out = self.write(out, raw)
        if self.result is None:
            return None
        rdir = Path(report) if report is not None else out.with_name(out.stem + "_report")
        write_identity_report(self.result, rdir, extra={**(extra or {}), "note": self.note}, plots=plots)
        self.report_dir = rdir
        return rdir


def match_folder(model: OnnxModel, gallery: Gallery, folder: Path, threshold: float, run: RunOptions, *,
                 which: str = "distorted", layout: str = "auto", top_k: int = 5,
                 photo_model: OnnxModel | None = None) -> tuple[pd.DataFrame, MatchResult | None]:
    """Match every probe image under ``folder`` against ``gallery`` (see :func:`probe_items` for
    ``which`` and ``layout``, and :func:`match_images` for the result)."""
    paths, truth, kinds = probe_items(folder, which, layout)
    run.total(len(paths))
    return match_images(model, gallery, paths, threshold, run, truth=truth, kinds=kinds, root=Path(folder),
                        top_k=top_k, photo_model=photo_model)


def match_images(model: OnnxModel, gallery: Gallery, images: Sequence[ImageInput], threshold: float,
                 run: RunOptions, *, truth: Sequence[str] | None = None, kinds: Sequence[str] | None = None,
                 root: Path | None = None, top_k: int = 5, photo_model: OnnxModel | None = None,
                 names: Sequence[str] | None = None) -> tuple[pd.DataFrame, MatchResult | None]:
    """Match probe images (files or RGB arrays) against ``gallery``, the largest face of each.

    Similarities are scores on the model's scale (:class:`facecli.card.ScoreScale`; cosines for a model
    without one). With ``photo_model`` and a gallery that keeps photo evidence, probes whose face is not sure
    are also tested as degraded copies of the gallery's photos (:class:`facecli.photo.PhotoEvidence`).

    Returns the table (path, identity, similarity, accepted, nearest, top_k, top_k_similarity, evidence,
    [true_identity, in_gallery, distortion], face_status, restored, error), one row per probe in input order,
    and, when ``truth`` (the probes' identities) is given, the scored result.
    """
    import pandas as pd

    emb, okp, evidence = probe_evidence(model, gallery, images, run, photo_model)
    result = match_embeddings(gallery, emb.vectors[okp], threshold, top_k,
                              None if truth is None else [truth[i] for i in okp],
                              None if kinds is None else [kinds[i] for i in okp], evidence=evidence)
    table = result.table.copy()
    name = (lambda i: names[i]) if names is not None else (lambda i: input_name(images[i], i, root))
    table.insert(0, "path", [name(i) for i in okp])
    if kinds is not None:
        table["distortion"] = [kinds[i] for i in okp]
    table["face_status"] = [emb.face_status[i] for i in okp]
    table["restored"] = [emb.restored[i] for i in okp]
    table["error"] = ""
    table.index = okp
    if emb.failures:
        table = pd.concat([table, failure_rows(images, emb.failures, root, truth, kinds, name)]).sort_index()
    table = table.reset_index(drop=True)
    return table, (result if truth is not None else None)


def probe_evidence(model: OnnxModel, gallery: Gallery, images: Sequence[ImageInput], run: RunOptions,
                   photo_model: OnnxModel | None = None) -> tuple[Embedded, np.ndarray, Evidence]:
    """Embed probe images and gather what a match weighs besides their face vectors (:class:`Evidence`: the
    model's score scale, photo evidence against ``gallery`` where ``photo_model`` is given and the gallery
    keeps it, washed-out and faceless probes). Returns (the embeddings, the indices of the readable probes,
    their evidence in that order)."""
    scale = model.card.score_scale
    votes: dict[int, object] = {}
    photo = None
    if photo_model is not None and gallery.photos is not None and len(gallery.photos.rows):
        photo = PhotoEvidence(photo_model, gallery.photos, scale or (lambda c: c), gallery)
    emb = embed_images(model, images, run, extra=photo.inputs if photo else None,
                       on_batch=(lambda crops, out: votes.update(photo.votes(crops, out))) if photo else None)
    okp = np.flatnonzero(emb.ok)
    evidence = Evidence(scale, [votes.get(int(i)) for i in okp], [emb.face_status[i] == "fallback" for i in okp],
                        [emb.face_status[i] == "not_found" for i in okp])
    return emb, okp, evidence


def failure_rows(images: Sequence[ImageInput], failures: dict[int, str], root: Path | None,
                 truth: Sequence[str] | None, kinds: Sequence[str] | None,
                 name: Callable[[int], str] | None = None) -> pd.DataFrame:
    """The rows of probes that could not be read: path and error (and what the layout tells of them)."""
    import pandas as pd
    name = name or (lambda i: input_name(images[i], i, root))
    fail = pd.DataFrame({"path": [name(i) for i in failures],
                         "error": list(failures.values())}, index=list(failures))
    if truth is not None:
        fail["true_identity"] = [truth[i] for i in failures]
    if kinds is not None:
        fail["distortion"] = [kinds[i] for i in failures]
    return fail
