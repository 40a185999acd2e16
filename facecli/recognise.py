"""Face recognition verbs: embed images, build or extend a gallery from identity folders, match probes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facecli.card import check_task, resolve_threshold
from facecli.classify import input_name, rel
from facecli.errors import FacecliError
from facecli.gallery import Gallery, build_templates
from facecli.pipeline import ImageInput, run_model
from facecli.protocols import MatchResult, match_embeddings
from facecli.runtime import OnnxModel
from facecli.scan import IdentityImage, is_identity_root, require_dir, scan_identity_folder, scan_images

Progress = Callable[[int], None] | None


@dataclass
class Embedded:
    """Embeddings of a list of files: rows of failed files are NaN and listed in ``failures``."""

    vectors: np.ndarray
    ok: np.ndarray
    failures: dict[int, str]
    face_status: list[str] = field(default_factory=list)


def embed_images(model: OnnxModel, paths: Sequence[ImageInput], *, batch_size: int = 64, detect: str | None = None,
                 on_progress: Progress = None) -> Embedded:
    """L2-normalised embeddings of ``paths`` (largest face when detecting), in input order."""
    check_task(model.card, "identity", str(model.path))
    res = run_model(model, paths, batch_size=batch_size, detect=detect, on_progress=on_progress)
    dim = int(model.card.embedding_dim or (res.outputs.shape[1] if res.outputs.ndim == 2 else 512))
    vec = np.full((len(paths), dim), np.nan, np.float32)
    status = [""] * len(paths)
    for crop, v in zip(res.crops, res.outputs, strict=True):
        vec[crop.index] = v
        status[crop.index] = crop.face_status
    ok = ~np.isnan(vec[:, 0]) if len(paths) else np.zeros(0, bool)
    return Embedded(vec, ok, res.failures, status)


@dataclass
class GalleryReport:
    """What went into a gallery build."""

    identities: int
    images: int
    failures: dict[str, str]  # path -> error
    skipped_identities: list[str]  # no usable clean image


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


def embed_identities(model: OnnxModel, root: Path, *, include_distorted: bool = False, per_image: bool = False,
                     batch_size: int = 64, detect: str | None = None, on_total: Progress = None,
                     on_progress: Progress = None) -> tuple[list[str], np.ndarray, dict[str, int], GalleryReport]:
    """Embed the gallery images of every identity folder under ``root``.

    Returns (row identities, vectors, image count per identity, report). One template per identity (mean
    of normalised embeddings, re-normalised) unless ``per_image``.
    """
    items, missing = gallery_items(root, include_distorted)
    if on_total:
        on_total(len(items))
    emb = embed_images(model, [it.path for it in items], batch_size=batch_size, detect=detect,
                       on_progress=on_progress)
    ok_items = [it for it, ok in zip(items, emb.ok, strict=True) if ok]
    failures = {rel(items[i].path, root): e for i, e in emb.failures.items()}
    lost = sorted({it.identity for it in items} - {it.identity for it in ok_items})
    if not ok_items:
        raise FacecliError(f"no gallery image under {root} could be read")
    ids = [it.identity for it in ok_items]
    vecs = emb.vectors[emb.ok]
    if per_image:
        rows, vectors = ids, vecs
        counts = pd.Series(ids).value_counts().to_dict()
    else:
        rows, vectors, cnt = build_templates(vecs, ids)
        counts = dict(zip(rows, cnt, strict=True))
    report = GalleryReport(len(set(rows)), len(ok_items), failures, sorted(missing + lost))
    return rows, vectors, counts, report


def model_info(model: OnnxModel) -> dict[str, Any]:
    """How a gallery records the model that embedded it."""
    return {"sha256": model.sha256, "path": str(model.path), "backbone": model.card.backbone,
            "preprocessing": model.card.preprocessing.to_dict(), "embedding_dim": model.card.embedding_dim}


def build_gallery(model: OnnxModel, root: Path, **kwargs) -> tuple[Gallery, GalleryReport]:
    """A new gallery from the clean images of each identity folder under ``root`` (see embed_identities)."""
    rows, vectors, counts, report = embed_identities(model, root, **kwargs)
    gallery = Gallery.create(rows, vectors, counts, model_info(model), model.card.threshold,
                             per_image=bool(kwargs.get("per_image")))
    gallery.meta["source"] = str(root)
    return gallery, report


def add_to_gallery(model: OnnxModel, gallery_dir: Path, root: Path, *, include_distorted: bool = False,
                   batch_size: int = 64, detect: str | None = None, on_total: Progress = None,
                   on_progress: Progress = None) -> tuple[Gallery, int, int, GalleryReport]:
    """Add the identities under ``root`` to the gallery in ``gallery_dir``, replacing those already in it,
    without re-embedding the others. Returns (the saved gallery, identities added, replaced, report).

    The images are embedded first, in the gallery's own mode (one vector per photo or one template per
    identity); then the gallery is re-read, changed and saved under its lock, so several runs adding at
    the same time all land. Refuses a model other than the one that built the gallery.
    """
    current = Gallery.load(gallery_dir)
    current.check_model(model.sha256, model.path)
    rows, vecs, counts, report = embed_identities(model, root, include_distorted=include_distorted,
                                                  per_image=bool(current.meta.get("per_image")),
                                                  batch_size=batch_size, detect=detect, on_total=on_total,
                                                  on_progress=on_progress)

    def add(g: Gallery) -> tuple[int, int]:
        g.check_model(model.sha256, model.path)
        return g.upsert(rows, vecs, counts)

    saved, (added, replaced) = Gallery.update(gallery_dir, add)
    return saved, added, replaced, report


def probe_items(folder: Path, which: str = "distorted", layout: str = "auto") -> tuple[list[Path], list[str] | None,
                                                                                          list[str] | None]:
    """Probe files of ``folder`` with their true identity and distortion kind when the layout tells them.

    ``layout`` "identity" reads ``ROOT/<identity>/[distortion/]`` ("auto" decides by looking); "plain"
    takes every image with no ground truth. ``which`` (identity layout only): distorted, clean or all.
    """
    root = require_dir(folder, "probe folder")
    if layout == "auto":
        layout = "identity" if is_identity_root(root) else "plain"
    if layout == "plain":
        return scan_images(root), None, None
    items = scan_identity_folder(root)
    keep = [it for it in items if which == "all" or (which == "distorted") == bool(it.distortion)]
    if not keep:
        raise FacecliError(f"no {which} probe images under {root}")
    return [it.path for it in keep], [it.identity for it in keep], [it.distortion or "clean" for it in keep]


def match_folder(model: OnnxModel, gallery: Gallery, folder: Path, *, threshold: float | None = None,
                 which: str = "distorted", layout: str = "auto", top_k: int = 5, batch_size: int = 64,
                 detect: str | None = None, on_total: Progress = None, on_progress: Progress = None
                 ) -> tuple[pd.DataFrame, MatchResult | None]:
    """Match every probe image under ``folder`` against ``gallery`` (see :func:`probe_items` for
    ``which`` and ``layout``, and :func:`match_images` for the result)."""
    paths, truth, kinds = probe_items(folder, which, layout)
    if on_total:
        on_total(len(paths))
    return match_images(model, gallery, paths, truth=truth, kinds=kinds, root=Path(folder), threshold=threshold,
                        top_k=top_k, batch_size=batch_size, detect=detect, on_progress=on_progress)


def match_images(model: OnnxModel, gallery: Gallery, images: Sequence[ImageInput], *,
                 truth: Sequence[str] | None = None, kinds: Sequence[str] | None = None, root: Path | None = None,
                 threshold: float | None = None, top_k: int = 5, batch_size: int = 64, detect: str | None = None,
                 on_progress: Progress = None) -> tuple[pd.DataFrame, MatchResult | None]:
    """Match probe images (files or RGB arrays) against ``gallery``, the largest face of each.

    Returns the table (path, identity, similarity, accepted, nearest, top_k, top_k_similarity,
    [true_identity, in_gallery, distortion], face_status, error), one row per probe in input order, and,
    when ``truth`` (the probes' identities) is given, the scored result. ``threshold`` is decided by
    :func:`facecli.card.resolve_threshold`: the given one, else the gallery's (calibrated, or the model's).
    """
    gallery.check_model(model.sha256, model.path)
    thr, _ = resolve_threshold(model.card, threshold, gallery.threshold, gallery.threshold_source)
    emb = embed_images(model, images, batch_size=batch_size, detect=detect, on_progress=on_progress)
    okp = np.flatnonzero(emb.ok)
    result = match_embeddings(gallery, emb.vectors[okp], thr, top_k,
                              None if truth is None else [truth[i] for i in okp],
                              None if kinds is None else [kinds[i] for i in okp])
    table = result.table.copy()
    table.insert(0, "path", [input_name(images[i], i, root) for i in okp])
    if kinds is not None:
        table["distortion"] = [kinds[i] for i in okp]
    table["face_status"] = [emb.face_status[i] for i in okp]
    table["error"] = ""
    table.index = okp
    if emb.failures:
        fail = pd.DataFrame({"path": [input_name(images[i], i, root) for i in emb.failures],
                             "error": list(emb.failures.values())}, index=list(emb.failures))
        if truth is not None:
            fail["true_identity"] = [truth[i] for i in emb.failures]
        if kinds is not None:
            fail["distortion"] = [kinds[i] for i in emb.failures]
        table = pd.concat([table, fail]).sort_index()
    table = table.reset_index(drop=True)
    return table, (result if truth is not None else None)
