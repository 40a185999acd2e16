"""Galleries: identity vectors in a FAISS inner-product index, photo evidence, and JSON metadata.

A gallery holds, per identity, one vector per photo (or one template), searched through a FAISS index,
and, with photo evidence (:mod:`facecli.photo`), each photo's photo-matcher vector and 64 x 64 thumbnail;
galleries built before photo evidence existed match on face evidence alone. On disk a gallery is one unit
(:mod:`facecli.gallery_store`): ``gallery.json`` names its data files with their checksums and is switched
in one rename, so a reader, a kill or a full disk sees the old gallery or the new one, never a mix. Readers
take no lock; changes go through :meth:`Gallery.update`, which re-reads the gallery, applies the change
and saves it under the writer lock: two ``gallery add`` runs at once both land (the slow embedding
happens outside the lock).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecli.card import BUILT_IN_THRESHOLD as DEFAULT_THRESHOLD
from facecli.errors import FacecliError
from facecli.gallery_store import (
    GALLERY_FORMAT,
    LOCK_TIMEOUT,
    check_meta,
    load_array,
    npy_bytes,
    read_version,
    write_version,
    writer_lock,
)

APPROX_ABOVE = 200_000  # rows beyond which an approximate (HNSW) index is used; exact search is fast below


def _check_index_header(folder: Path, blob: bytes, rows: int, dim: int) -> None:
    """FacecliError unless a stored FAISS index is an HNSW index of ``rows`` vectors of ``dim`` (read from its
    header before FAISS allocates anything)."""
    ok = len(blob) >= 16 and blob[:4] == b"IHNf"
    if ok:
        d, n = int.from_bytes(blob[4:8], "little", signed=True), int.from_bytes(blob[8:16], "little", signed=True)
        ok = d == dim and n == rows
    if not ok:
        raise FacecliError(f"gallery {folder} is corrupt (index, templates and metadata disagree)")


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def build_templates(embeddings: np.ndarray, identities: Sequence[str]) -> tuple[list[str], np.ndarray, list[int]]:
    """One template per identity: the mean of its normalised embeddings, re-normalised.

    Returns (identity names in first-seen order, templates (G, D), image count per identity).
    """
    emb = normalise(embeddings)
    names = list(dict.fromkeys(identities))
    pos = {n: i for i, n in enumerate(names)}
    idx = np.fromiter((pos[i] for i in identities), dtype=np.int64, count=len(identities))
    sums = np.zeros((len(names), emb.shape[1]), np.float32)
    np.add.at(sums, idx, emb)
    counts = np.bincount(idx, minlength=len(names))
    return names, normalise(sums), counts.tolist()


def rows_by_name(names: Sequence[str]) -> dict[str, np.ndarray]:
    """The row indices of each name in ``names`` (ascending)."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name, []).append(i)
    return {k: np.asarray(v, np.int64) for k, v in groups.items()}


@dataclass
class PhotoSet:
    """Photo evidence of a gallery: per photo its identity, the photo matcher's unit vector and a thumbnail."""

    rows: list[str]  # identity of each photo
    vectors: np.ndarray  # (P, D) float32, unit norm
    thumbnails: np.ndarray  # (P, 64, 64) uint8
    model: dict[str, Any]  # the photo matcher (sha256, path, preprocessing), as model_info records it
    _by_identity: dict[str, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)
    _coarse: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def coarse(self, rows: np.ndarray, side: int = 16) -> np.ndarray:
        """The ``side`` x ``side`` block means of the thumbnails of ``rows`` (uint8, (len(rows), side, side)),
        computed once for the whole set (``side`` squared bytes a photo)."""
        if self._coarse is None or self._coarse.shape[1] != side:
            n, h, w = self.thumbnails.shape
            blocks = self.thumbnails.reshape(n, side, h // side, side, w // side).mean(axis=(2, 4))
            self._coarse = np.rint(blocks).astype(np.uint8)
        return self._coarse[rows]

    def rows_of(self, identities: Sequence[str]) -> np.ndarray:
        """Row indices of the photos of ``identities`` (in that order of identities, rows ascending)."""
        if self._by_identity is None:
            self._by_identity = rows_by_name(self.rows)
        got = [self._by_identity[n] for n in identities if n in self._by_identity]
        return np.concatenate(got) if got else np.zeros(0, np.int64)

    def upsert(self, other: PhotoSet) -> None:
        """Replace the photos of ``other``'s identities by ``other``'s photos, keep the rest."""
        new = set(other.rows)
        keep = [i for i, r in enumerate(self.rows) if r not in new]
        self.rows = [self.rows[i] for i in keep] + list(other.rows)
        self.vectors = np.concatenate([self.vectors[keep], other.vectors])
        self.thumbnails = np.concatenate([self.thumbnails[keep], other.thumbnails])
        self._by_identity = self._coarse = None

    def nearest(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Row indices of the ``k`` photos nearest each query (best first), (Q, k)."""
        k = min(k, len(self.rows))
        sims = normalise(queries) @ self.vectors.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        return np.take_along_axis(part, order, axis=1)


@dataclass
class Gallery:
    """Identity vectors (one template per identity, or one row per image) and their search index; with
    ``photos``, the photo evidence of every gallery photo."""

    rows: list[str]  # identity of each vector row
    vectors: np.ndarray  # (N, D) float32, unit norm
    meta: dict[str, Any] = field(default_factory=dict)
    _index: Any = field(default=None, repr=False)
    photos: PhotoSet | None = None
    _by_identity: dict[str, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)
    folder: Path | None = field(default=None, repr=False)  # where it was read from (None: built in memory)

    # ---- construction
    @classmethod
    def create(cls, rows: Sequence[str], vectors: np.ndarray, image_counts: dict[str, int], model_info: dict,
               threshold: float | None, per_image: bool = False, score_scale: dict | None = None,
               photos: PhotoSet | None = None) -> Gallery:
        """A new gallery; ``model_info`` holds the embedding model's sha256, path and preprocessing;
        ``score_scale`` the model's cosine-to-score map (``threshold`` is then a score, else a cosine)."""
        now = _now()
        meta = {
            "format": GALLERY_FORMAT, "created": now, "updated": now, "model": model_info,
            "threshold": float(threshold if threshold is not None else DEFAULT_THRESHOLD),
            "threshold_source": "model default" if threshold is not None else "built-in default",
            "per_image": per_image, "image_counts": dict(image_counts), "score_scale": score_scale,
        }
        return cls(list(rows), normalise(vectors), meta, photos=photos)

    def __repr__(self) -> str:
        return (f"Gallery({len(self.identities):,} identities, {len(self.rows):,} vectors of {self.dim}, "
                f"evidence {self.evidence!r}, threshold {self.threshold:.4f})")

    @property
    def evidence(self) -> str:
        """What the gallery can match on: "face and photo", or "face" (built without photo evidence)."""
        return "face and photo" if self.photos is not None else "face"

    @property
    def identities(self) -> list[str]:
        return list(dict.fromkeys(self.rows))

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def threshold(self) -> float:
        """The threshold stored with the gallery: the model's when built, the calibrated one after
        ``calibrate`` (:func:`facecli.card.resolve_threshold` decides which applies)."""
        return float(self.meta.get("threshold", DEFAULT_THRESHOLD))

    @property
    def threshold_source(self) -> str:
        return str(self.meta.get("threshold_source") or "gallery")

    def threshold_on(self, scale: Any) -> tuple[float, str]:
        """The stored threshold and its source on the scale of the model matching now: a gallery built before
        score scales existed stores a cosine, read through ``scale`` (a :class:`facecli.card.ScoreScale`)."""
        t, source = self.threshold, self.threshold_source
        if scale is not None and self.meta.get("score_scale") is None:
            return float(scale(t)), f"{source} (cosine {t:.4f}, stored before score scales, read as a score)"
        return t, source

    def calibrated_threshold(self, scale: Any) -> tuple[float, str] | None:
        """The threshold ``facecli calibrate`` chose on the user's own data (see :meth:`threshold_on`), or None
        when the gallery keeps only the model's default from when it was built (the decision then follows the
        question asked: :func:`facecli.decision.decide`)."""
        calibrated = self.meta.get("threshold_calibrated")
        if calibrated is None:  # galleries written before the flag: calibrate wrote "calibrated on ..."
            calibrated = self.threshold_source.startswith("calibrated")
        return self.threshold_on(scale) if calibrated else None

    def upsert(self, rows: Sequence[str], vectors: np.ndarray, image_counts: dict[str, int],
               photos: PhotoSet | None = None) -> tuple[int, int]:
        """Add identities, replacing any already present (their photo evidence too, when the gallery keeps
        it and ``photos`` is given). Returns (added, replaced) identity counts."""
        if self.photos is not None and photos is not None:
            self.photos.upsert(photos)
        new = set(rows)
        existing = set(self.rows)
        keep = [i for i, r in enumerate(self.rows) if r not in new]
        self.rows = [self.rows[i] for i in keep] + list(rows)
        self.vectors = np.concatenate([self.vectors[keep], normalise(vectors)])
        self.meta["image_counts"].update(image_counts)
        self.meta["updated"] = _now()
        self._index = self._by_identity = None
        return len(new - existing), len(new & existing)

    # ---- search
    def index(self):
        """The FAISS index (exact inner product, or HNSW above APPROX_ABOVE rows), built on demand."""
        if self._index is None:
            self._index = _make_index(self.vectors)
        return self._index

    def search(self, queries: np.ndarray, k: int = 5) -> tuple[list[list[str]], np.ndarray]:
        """The ``k`` nearest identities of each query and their cosine similarities (best first).

        With one row per image, an identity appears once, at its best row.
        """
        q = normalise(queries)
        k = max(1, min(k, len(self.identities)))
        fetch = min(len(self.rows), k if not self.meta.get("per_image") else max(4 * k, k + 16))
        sims, idx = self.index().search(q, fetch)
        # one identity with many photos can fill the nearest rows: widen until k distinct identities show
        while fetch < len(self.rows) and min(len({self.rows[j] for j in r if j >= 0}) for r in idx) < k:
            fetch = min(len(self.rows), fetch * 4)
            sims, idx = self.index().search(q, fetch)
        names: list[list[str]] = []
        out = np.full((len(q), k), np.nan, np.float32)
        for r in range(len(q)):
            seen: list[str] = []
            for j, s in zip(idx[r], sims[r], strict=True):
                if j < 0:
                    continue
                name = self.rows[j]
                if name not in seen:
                    out[r, len(seen)] = s
                    seen.append(name)
                    if len(seen) == k:
                        break
            names.append(seen)
        return names, out

    def identity_cosines(self, query: np.ndarray, identities: Sequence[str]) -> np.ndarray:
        """Cosine similarity of one query vector to each of ``identities`` (its best row; NaN for a name the
        gallery does not hold)."""
        q = normalise(np.asarray(query, np.float32).reshape(1, -1))[0]
        if self._by_identity is None:
            self._by_identity = rows_by_name(self.rows)
        out = np.full(len(identities), np.nan, np.float32)
        for k, name in enumerate(identities):
            if name in self._by_identity:
                out[k] = float(np.max(self.vectors[self._by_identity[name]] @ q))
        return out

    def similarity_matrix(self, queries: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Cosine similarity of every query to every identity (best row per identity): for metrics."""
        names = self.identities
        pos = {n: i for i, n in enumerate(names)}
        s = normalise(queries) @ self.vectors.T
        if len(names) == len(self.rows):
            order = [pos[r] for r in self.rows]
            out = np.empty_like(s)
            out[:, order] = s
            return names, out
        # several rows per identity: group the columns by identity and take each group's maximum
        group = np.fromiter((pos[r] for r in self.rows), dtype=np.int64, count=len(self.rows))
        order = np.argsort(group, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0])
        return names, np.maximum.reduceat(s[:, order], starts, axis=1)

    # ---- persistence (facecli.gallery_store: one atomic unit, checked at load, writers locked)
    def save(self, folder: str | os.PathLike[str], lock_timeout: float = LOCK_TIMEOUT) -> None:
        """Write the gallery into ``folder`` (created with the usual permissions) as one new version, under the
        writer lock: a reader, a kill or a full disk sees the old gallery or this one, never a mix. To change a
        gallery that others may be changing too, use :meth:`update` (it re-reads under the same lock)."""
        folder = _folder(folder)
        created = _make_dir(folder)
        try:
            with writer_lock(folder, lock_timeout):
                self._write(folder, new=created)
        except FacecliError:
            if created:  # a new gallery that could not be written leaves nothing behind
                shutil.rmtree(folder, ignore_errors=True)
            raise

    def _write(self, folder: Path, new: bool = False) -> None:
        import faiss

        meta = {**self.meta, "rows": self.rows, "identities": len(self.identities), "dim": self.dim,
                "index": "hnsw" if len(self.rows) > APPROX_ABOVE else "flat_inner_product"}
        meta.pop("photo", None)
        meta.pop("files", None)
        data = {"index": faiss.serialize_index(self.index()).tobytes(), "templates": npy_bytes(self.vectors)}
        if self.photos is not None:
            data["photo_vectors"] = npy_bytes(self.photos.vectors.astype(np.float32))
            data["thumbnails"] = npy_bytes(self.photos.thumbnails.astype(np.uint8))
            meta["photo"] = {"model": self.photos.model, "rows": self.photos.rows}
        check_meta(folder, meta)
        write_version(folder, data, meta, new=new)

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Gallery:
        """Read a gallery folder without waiting for writers (the last version written); FacecliError when it is
        missing, not a gallery, or corrupt (every field, size, checksum and shape is checked first)."""
        where = _folder(folder)
        g = cls._read(where)
        g.folder = where
        return g

    @classmethod
    def update(cls, folder: str | os.PathLike[str], change: Callable[[Gallery], Any],
               lock_timeout: float = LOCK_TIMEOUT) -> tuple[Gallery, Any]:
        """Re-read the gallery, apply ``change(gallery)`` and save it, all under the writer lock.

        Returns (the saved gallery, what ``change`` returned). Concurrent updates are serialised, so
        none is lost.
        """
        folder = _folder(folder)
        if not folder.is_dir():
            raise FacecliError(f"gallery not found: {folder} (build one with 'facecli gallery build')")
        with writer_lock(folder, lock_timeout):
            g = cls._read(folder)
            result = change(g)
            g._write(folder)
        return g, result

    @classmethod
    def _read(cls, folder: Path) -> Gallery:
        import faiss

        meta, data = read_version(folder)
        rows = meta.pop("rows")
        meta.pop("files", None)
        dim = meta.get("dim")
        vectors = load_array(folder, "templates", data["templates"], (len(rows), dim), "float32")
        index = None
        if data.get("index") is not None:
            _check_index_header(folder, data["index"], len(rows), vectors.shape[1])
            try:
                index = faiss.deserialize_index(np.frombuffer(data["index"], np.uint8))
            except RuntimeError:
                raise FacecliError(f"gallery {folder} is corrupt (its index cannot be read)") from None
            if index.ntotal != len(vectors) or index.d != vectors.shape[1]:
                raise FacecliError(f"gallery {folder} is corrupt (index, templates and metadata disagree)")
        photo = meta.pop("photo", None)
        photos = None
        if photo is not None:
            n = len(photo["rows"])
            photos = PhotoSet(list(photo["rows"]),
                              load_array(folder, "photo vectors", data["photo_vectors"], (n, None), "float32"),
                              load_array(folder, "thumbnails", data["thumbnails"], (n, 64, 64), "uint8"),
                              dict(photo["model"]))
        return cls(rows, vectors, meta, index, photos=photos)

    def check_model(self, sha256: str, path: str | os.PathLike[str], same_weights: Sequence[str] = ()) -> None:
        """Refuse probes embedded by another model than the one that built the gallery. Models that embed alike
        (:func:`embeds_alike`: the same weights with another card, or a float model and its int8 copy) are the
        same model here."""
        want = self.meta.get("model", {}).get("sha256")
        if not embeds_alike(self.meta.get("model", {}), sha256, same_weights):
            where = self.folder or "<folder>"
            how = (f"'facecli gallery rebuild -g {where}' (it re-reads the folders it was built from)"
                   if recorded_sources(self.meta) else f"'facecli gallery build ROOT -g {where} --replace'")
            raise FacecliError(
                f"gallery was built with another model ({self.meta.get('model', {}).get('path')}, "
                f"sha256 {str(want)[:12]}...) than {path} (sha256 {sha256[:12]}...), whose embeddings differ "
                f"(a new model version, or another model); rebuild the gallery from its photos with {how}"
            )


def source_record(root: Path, include_distorted: bool) -> dict[str, Any]:
    """How a gallery records a folder it was built or added from (what ``gallery rebuild`` re-reads)."""
    return {"root": str(Path(root).resolve()), "include_distorted": bool(include_distorted)}


def recorded_sources(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The folders a gallery was built and then added from, in order (``{"root", "include_distorted"}``);
    a gallery written before these were recorded gives the folder it was built from, if it says."""
    sources = meta.get("sources")
    if isinstance(sources, list) and sources:
        return [{"root": str(s.get("root")), "include_distorted": bool(s.get("include_distorted"))}
                for s in sources if isinstance(s, dict) and s.get("root")]
    return [{"root": str(meta["source"]), "include_distorted": False}] if meta.get("source") else []


def embeds_alike(recorded: dict[str, Any], sha256: str, embeds_like: Sequence[str] = ()) -> bool:
    """Whether the model of digest ``sha256`` (whose card lists ``embeds_like``) embeds as the ``recorded`` one
    (a gallery's record of its model: sha256, and the ``embeds_like`` of its card): the same file, or either
    lists the other."""
    want = recorded.get("sha256")
    return want == sha256 or want in embeds_like or sha256 in (recorded.get("embeds_like") or ())


def _folder(folder: Any) -> Path:
    if not isinstance(folder, str | os.PathLike):
        raise FacecliError(f"a gallery is a folder path, not {type(folder).__name__}")
    return Path(folder)


def _make_dir(folder: Path) -> bool:
    """Create ``folder`` (and parents) with the usual permissions (0777 less the umask); True when it is new."""
    if folder.exists() and not folder.is_dir():
        raise FacecliError(f"gallery path {folder} exists and is not a folder")
    if folder.is_dir():
        return False
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise FacecliError(f"cannot create gallery folder {folder} ({exc.strerror})") from None
    return True


def _make_index(vectors: np.ndarray):
    import faiss

    d = vectors.shape[1]
    if len(vectors) > APPROX_ABOVE:
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.hnsw.efSearch = 128
    else:
        index = faiss.IndexFlatIP(d)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
