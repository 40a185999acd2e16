"""Who is in this folder: every face found, grouped by person without names (``facecli cluster``).

Two stages. **Embed** (part by part, streamed and resumable like ``classify``, on either engine): every
face of every image gets the identity model's embedding; with photo evidence, each image also gets the photo
matcher's vector and its thumbnails (:mod:`facecli.photo`). **Group** (once, over all faces): average linkage
over a k-nearest-neighbour graph (:mod:`facecli.clustering`), stopping at a threshold on the calibrated score
(default: a false-match rate of :data:`CLUSTER_FMR` per comparison). Faces the glare washed out (face_status
``fallback``) or not found do not link by face: their embedding describes the glare, not the person. With
photo evidence such an image joins the cluster of the photo it is a degraded copy of (evidence ``photo``);
else it stays a singleton (a washed-out face) or unclustered (no face). Photo evidence also keeps the degraded
copies of one photo together (:func:`_join_copies`): a copy whose face drifted out of its photo's cluster
(fog, rain) is found by pixels and moved back.

Cluster numbers are stable: 1 is the largest cluster, ties broken by the first row; singletons (faces that
joined no one, ``cluster_size`` 1, name ``singleton``) come after every cluster of two or more. With a
gallery, a cluster whose members' accepted matches agree on one identity (most of the cluster) takes its
name; the others are ``person_0001``, ... (the cluster's number).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facecli.batch import Streamed, TableRun
from facecli.clustering import average_linkage
from facecli.errors import FacecliError
from facecli.inputs import Named
from facecli.jobs import Job
from facecli.options import RunOptions
from facecli.photo import FIRE, SHORTLIST_FACE_GONE, PhotoStage, PhotoView, copy_evidence, photo_score
from facecli.pipeline import FACE_NOT_FOUND, Crop, run_model
from facecli.resolve import photo_model_for
from facecli.resolve import resolve_model as _model

CLUSTER_FMR = 8e-4  # default per-comparison false-match rate of the linkage threshold, chosen on the held-out people of
# facecli's split (weight-averaged face model, copies kept together by _join_copies) over the two kinds of
# folder: BCubed F on 521 clean photos + their six non-sunny copies (175 people) / on the 394 distinct clean photos
# of the 48 people with two or more: 0.9748 / 0.985 at 6e-4, 0.9726 / 0.985 at 7e-4, 0.9723 / 0.990 at 8e-4,
# 0.9701 / 0.990 at 1e-3 (means 0.9799, 0.9788, 0.9812, 0.9801): 8e-4 has the best mean, and keeps precision at
# 0.976 with the sunny copies added (0.965 at 1e-3)
CLUSTER_COLUMNS = ["path", "face", "cluster", "name", "cluster_size", "confidence", "evidence", "face_status",
                   "restored", "box", "error"]
HIDDEN = ("_vec", "_pvec", "_thumb", "_pthumb", "_usable")  # per-row arrays a part keeps beside its rows
SINGLETON = "singleton"
FACE_GONE = ("fallback", FACE_NOT_FOUND)  # no face evidence: the glare washed it out, or none was found
NAME_SHARE = 0.5  # a gallery name needs the accepted matches of more than this share of a cluster's faces


@dataclass
class ClusterJob(Job):
    """Embed a part's inputs for clustering: one row per face (path, face, face_status, restored, box, error) with the
    hidden per-row arrays of :data:`HIDDEN` (identity vector; photo matcher vector and thumbnails on face 0)."""

    model_path: str
    photo: bool
    options: RunOptions
    _model: Any = field(default=None, repr=False, compare=False)
    _photo: Any = field(default=None, repr=False, compare=False)

    def load(self, model: Any = None, photo_model: Any = None) -> ClusterJob:
        self._model = model or _model(self.model_path, "identity", self.options)
        self._photo = (photo_model or photo_model_for(None, options=self.options)) if self.photo else None
        return self

    def __call__(self, part: list[Named]) -> tuple[pd.DataFrame, list[tuple[str, Any]]]:
        if self._model is None:
            self.load()
        table = embed_faces(self._model, self._photo, [n.item for n in part], [n.name for n in part],
                            self.options)
        return table, part_summary(table, len(part))


def embed_faces(model: Any, photo_model: Any, items: list[Any], names: list[str], run: RunOptions) -> pd.DataFrame:
    """One row per face of ``items`` (files or arrays, named ``names``) in input order, with hidden arrays."""
    views: dict[int, PhotoView] = {}
    stage = PhotoStage(photo_model) if photo_model is not None else None

    def keep(crops: list[Crop], _: np.ndarray) -> None:
        views.update({c.index: c.extra for c in crops if c.extra is not None})

    res = run_model(model, items, run, all_faces=True, extra=stage.view if stage else None,
                    on_batch=keep if stage else None)
    keys = sorted(views)
    # float16: a shortlist needs no more
    pvec = dict(zip(keys, stage.embed([views[i] for i in keys], run.batch_size).astype(np.float16), strict=True)) \
        if stage else {}
    rows = []
    for crop, v in zip(res.crops, res.outputs, strict=True):
        pv = views.get(crop.index) if crop.face == 0 else None
        gone = pv is not None and crop.face_status in FACE_GONE  # only these are ever tested as copies
        rows.append({"_i": crop.index, "face": crop.face, "face_status": crop.face_status, "restored": crop.restored,
                     "box": "" if crop.box is None else " ".join(map(str, crop.box)), "error": "",
                     "_vec": np.asarray(v, np.float32), "_pvec": pvec.get(crop.index) if pv else None,
                     "_thumb": pv.thumb if pv else None, "_pthumb": pv.probe if gone else None,
                     "_usable": pv.usable if gone else None})
    for i, err in res.failures.items():
        rows.append({"_i": i, "face": None, "face_status": "", "restored": "", "box": "", "error": err,
                     **dict.fromkeys(HIDDEN)})
    df = pd.DataFrame(rows, columns=["_i", "face", "face_status", "restored", "box", "error", *HIDDEN])
    df = df.sort_values(["_i", "face"], key=lambda c: pd.to_numeric(c, errors="coerce").fillna(-1), kind="stable")
    df.insert(0, "path", [names[i] for i in df["_i"]])
    return df.drop(columns="_i").reset_index(drop=True)


def part_summary(table: pd.DataFrame, images: int) -> list[tuple[str, Any]]:
    """A part's counts for the summary (added up over parts)."""
    ok = table[table["error"] == ""]
    status = ok["face_status"].value_counts()
    return [("images", images), ("faces detected", int((~ok["face_status"].isin(FACE_GONE)).sum())),
            ("washed-out faces (fallback)", int(status.get("fallback", 0))),
            ("images without a face", int(status.get(FACE_NOT_FOUND, 0))),
            ("files that failed", int((table["error"] != "").sum()))]


# ------------------------------------------------------------------ grouping


@dataclass
class Grouping:
    """The settings of the grouping stage: the linkage threshold (a score, with its decision) and its cosine,
    the identity model's score scale, and an optional gallery (with its model's decision) for names."""

    decision: Any  # facecli.decision.Decision
    cosine: float
    scale: Any = None  # facecli.card.ScoreScale or None
    gallery: Any = None
    name_decision: Any = None


def group(table: pd.DataFrame, vectors: np.ndarray, photo: PhotoData | None, how: Grouping) -> pd.DataFrame:
    """The final table: ``table`` (one row per face, without hidden columns) with cluster, name, cluster_size,
    confidence and evidence, from the faces' ``vectors`` and, where given, their photo evidence."""
    ok = (table["error"].to_numpy() == "")
    face = ok & ~table["face_status"].isin(FACE_GONE).to_numpy()
    found = average_linkage(vectors, how.cosine, usable=face)
    labels, evidence, tie = found.labels.copy(), np.where(face, "face", "").astype(object), found.tie.copy()
    if photo is not None:
        _join_copies(table, photo, labels, evidence, tie)
        _attach_by_photo(table, photo, labels, evidence, tie)
    gone = ok & (table["face_status"].to_numpy() == "fallback") & (labels < 0)
    labels[gone] = labels.max(initial=-1) + 1 + np.arange(gone.sum())  # washed-out faces alone: singletons
    out = table.copy()
    number, sizes = _numbers(labels)
    out["cluster"] = pd.array([n if n > 0 else None for n in number], dtype="Int64")
    out["cluster_size"] = pd.array([sizes[n] if n > 0 else None for n in number], dtype="Int64")
    conf = how.scale(tie) if how.scale is not None else tie
    out["confidence"] = [round(float(c), 6) if np.isfinite(c) and n > 0 else None for c, n in zip(conf, number, strict=True)]
    out["evidence"] = [e if n > 0 and sizes[n] > 1 else "" for e, n in zip(evidence, number, strict=True)]
    out["name"] = _names(number, sizes, vectors, how)
    return out.reindex(columns=CLUSTER_COLUMNS)


def _numbers(labels: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Cluster numbers 1..: clusters of two or more by size (largest first, ties by first row), then
    singletons in row order; 0 for rows in no cluster."""
    valid = labels >= 0
    counts = Counter(labels[valid].tolist())
    first: dict[int, int] = {}
    for r, lab in enumerate(labels.tolist()):
        if lab >= 0:
            first.setdefault(lab, r)
    order = sorted(counts, key=lambda c: (counts[c] == 1, -counts[c], first[c]))
    to_number = {c: k + 1 for k, c in enumerate(order)}
    number = np.array([to_number.get(lab, 0) for lab in labels.tolist()], np.int64)
    return number, {to_number[c]: counts[c] for c in counts}


COPY_NEIGHBOURS = 3  # images nearest by the photo matcher tested as copies of each clustered image (held-out
# FACECOM: every copy whose face left its photo's cluster had one of its photo's images among its 3 nearest)


def _join_copies(table: pd.DataFrame, photo: PhotoData, labels: np.ndarray, evidence: np.ndarray,
                 tie: np.ndarray) -> int:
    """Degraded copies of one photo show one person. Each clustered image (face 0, with photo evidence) is
    tested pixel by pixel (:func:`facecli.photo.copy_evidence`, plain thumbnails) against its
    :data:`COPY_NEIGHBOURS` nearest images by the photo matcher's vector that sit in another cluster. Images
    found to be copies of each other form groups, and a group split over clusters moves whole to the cluster
    that holds most of it (ties: the larger cluster); the images moved get evidence ``photo`` and the photo
    score as their confidence. Updates ``labels``, ``evidence`` and ``tie`` in place; returns how many moved.

    Only images whose face boxes overlap (:data:`COPY_BOX_OVERLAP`) are tested: a copy's face sits where its
    photo's does. On the held-out people of facecli's split (3,647 images, 175 people; linkage at the default
    rate) this tested 34 pairs, found 27 copies (none across people) and moved 8 images: BCubed F 0.9700 ->
    0.9723."""
    a, b = _copy_candidates(table, photo, labels)
    if not len(a):
        return 0
    need = np.unique(np.concatenate([a, b]))
    thumbs = dict(zip(need.tolist(), photo.thumbs(need), strict=True))
    everywhere = np.ones((64, 64), bool)
    fired, best = [], {}  # pairs found to be copies; each such image's highest copy evidence
    for i in np.unique(a).tolist():
        js = b[a == i]
        ev = copy_evidence(thumbs[i], everywhere, np.stack([thumbs[j] for j in js.tolist()]), FIRE)
        for j, e in zip(js.tolist(), ev.tolist(), strict=True):
            if e >= FIRE:
                fired.append((i, j))
                best[i], best[j] = max(best.get(i, 0.0), e), max(best.get(j, 0.0), e)
    if not fired:
        return 0
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    at = {r: k for k, r in enumerate(need.tolist())}
    ends = np.array([(at[i], at[j]) for i, j in fired])
    _, component = connected_components(coo_matrix((np.ones(len(ends)), (ends[:, 0], ends[:, 1])),
                                                   shape=(len(need), len(need))), directed=False)
    groups: dict[int, list[int]] = {}
    for r in best:
        groups.setdefault(int(component[at[r]]), []).append(r)
    return _move_groups(list(groups.values()), best, labels, evidence, tie)


def _copy_candidates(table: pd.DataFrame, photo: PhotoData, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of rows (probe, candidate) to test as copies: each clustered face-0 row with photo evidence and its
    :data:`COPY_NEIGHBOURS` nearest by the photo matcher, in another cluster, with overlapping face boxes (a
    copy's face sits where its photo's does: near-identical frames whose largest faces are different people
    at different places are not tested)."""
    from facecli.clustering import nearest

    rows = np.flatnonzero(photo.has & (table["face"].to_numpy() == 0) & (labels >= 0))
    if len(rows) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    near = rows[nearest(photo.pvec, rows, photo.pvec[rows], COPY_NEIGHBOURS + 1)]
    a, b = np.repeat(rows, near.shape[1]), near.ravel()
    keep = (a != b) & (labels[a] != labels[b])
    a, b = a[keep], b[keep]
    if not len(a):
        return a, b
    boxes = _boxes(table["box"].to_numpy(), np.unique(np.concatenate([a, b])))
    same_place = np.array([_overlap(boxes.get(i), boxes.get(j)) >= COPY_BOX_OVERLAP
                           for i, j in zip(a.tolist(), b.tolist(), strict=True)], bool)
    return a[same_place], b[same_place]


def _move_groups(groups: list[list[int]], best: dict[int, float], labels: np.ndarray, evidence: np.ndarray,
                 tie: np.ndarray) -> int:
    """Move each group of copies split over clusters to the cluster holding most of it (ties: the larger
    cluster, then the lower label); returns how many rows moved."""
    sizes = Counter(labels[labels >= 0].tolist())
    moved = 0
    for members in groups:
        held = Counter(labels[members].tolist())
        if len(held) < 2:
            continue
        to = max(held, key=lambda c: (held[c], sizes[c], -c))
        for r in members:
            if labels[r] != to:
                sizes[labels[r]] -= 1
                sizes[to] += 1
                labels[r], evidence[r], tie[r] = to, "photo", float(photo_score(best[r]))
                moved += 1
    return moved


COPY_BOX_OVERLAP = 0.3  # intersection over union of two face boxes needed to join them as copies (no box: no test)


def _boxes(column: np.ndarray, rows: np.ndarray) -> dict[int, tuple[float, float, float, float] | None]:
    """The face boxes (x, y, w, h) of ``rows`` from the table's ``box`` text ("x y w h"; None where blank)."""
    out: dict[int, tuple[float, float, float, float] | None] = {}
    for r in rows.tolist():
        parts = str(column[r]).split()
        out[r] = tuple(float(v) for v in parts) if len(parts) == 4 else None  # type: ignore[assignment]
    return out


def _overlap(p: tuple[float, ...] | None, q: tuple[float, ...] | None) -> float:
    """Intersection over union of two (x, y, w, h) boxes; 1 when either is unknown (detection off)."""
    if p is None or q is None:
        return 1.0
    w = min(p[0] + p[2], q[0] + q[2]) - max(p[0], q[0])
    h = min(p[1] + p[3], q[1] + q[3]) - max(p[1], q[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = p[2] * p[3] + q[2] * q[3] - inter
    return inter / union if union > 0 else 0.0


def _attach_by_photo(table: pd.DataFrame, photo: PhotoData, labels: np.ndarray, evidence: np.ndarray,
                     tie: np.ndarray) -> None:
    """Washed-out or faceless images join the cluster of the photo they are a degraded copy of: the photos
    nearest by the photo matcher's vector (:data:`facecli.photo.SHORTLIST_FACE_GONE` of them, among images
    whose face is clustered) are tested pixel by pixel (:func:`facecli.photo.copy_evidence`)."""
    from facecli.clustering import nearest

    cand = np.flatnonzero(photo.has & (table["face"].to_numpy() == 0) & (labels >= 0))
    probes = photo.probes[labels[photo.probes] < 0]
    if not len(cand) or not len(probes):
        return
    near = cand[nearest(photo.pvec, cand, photo.pvec[probes], SHORTLIST_FACE_GONE)]
    need = np.unique(near)
    thumbs = dict(zip(need.tolist(), photo.thumbs(need), strict=True))
    where = {r: j for j, r in enumerate(photo.probes.tolist())}
    for r, rows in zip(probes.tolist(), near, strict=True):
        ev = copy_evidence(photo.pthumb[where[r]], photo.usable[where[r]], np.stack([thumbs[c] for c in rows]), FIRE)
        best = int(np.argmax(ev))
        if ev[best] >= FIRE:
            labels[r] = labels[rows[best]]
            evidence[r] = "photo"
            tie[r] = float(photo_score(ev[best]))


def _names(number: np.ndarray, sizes: dict[int, int], vectors: np.ndarray, how: Grouping) -> list[str]:
    """Each row's cluster name: the gallery identity its cluster agrees on, else person_NNNN (singleton for a
    cluster of one); blank for rows in no cluster."""
    named: dict[int, str] = {}
    if how.gallery is not None:
        named = _gallery_names(number, vectors, how)
    width = max(4, len(str(max(sizes, default=0))))
    out = []
    for n in number.tolist():
        if n <= 0:
            out.append("")
        else:
            out.append(named.get(n) or (SINGLETON if sizes[n] == 1 else f"person_{n:0{width}d}"))
    return out


def _gallery_names(number: np.ndarray, vectors: np.ndarray, how: Grouping) -> dict[int, str]:
    """Cluster number -> gallery identity, for clusters where more than :data:`NAME_SHARE` of the faces are
    accepted as one identity (a cluster never gets two names)."""
    rows = np.flatnonzero((number > 0) & np.isfinite(vectors).all(axis=1) & (np.abs(vectors).sum(axis=1) > 0))
    if not len(rows):
        return {}
    names, cos = how.gallery.search(vectors[rows], 1)
    scale = how.scale
    score = scale(cos[:, 0]) if scale is not None else cos[:, 0]
    votes: dict[int, Counter] = {}
    for r, nm, s in zip(rows.tolist(), names, score, strict=True):
        if np.isfinite(s) and s >= how.name_decision.threshold:
            votes.setdefault(int(number[r]), Counter())[nm[0]] += 1
    size = Counter(number[rows].tolist())
    out = {}
    for n, c in votes.items():
        name, k = c.most_common(1)[0]
        if k > NAME_SHARE * size[n]:
            out[n] = name
    return out


# ------------------------------------------------------------------ the result


@dataclass
class ClusterRun(TableRun):
    """The outcome of :func:`facecli.cluster_faces`: one ``table`` row per face (see :data:`CLUSTER_COLUMNS`),
    the number of input ``images``, the linkage decision, and for a streamed run what it wrote."""

    table: pd.DataFrame | None
    images: int
    decision: Any
    streamed: Streamed | None = None
    gallery: str | None = None

    def summary_rows(self) -> list[tuple[str, Any]]:
        """Images, faces, clusters, singletons, the largest clusters, images without a face, files that failed,
        and the threshold with what it means."""
        from facecli.summary import cluster_rows

        return cluster_rows(self.table, self.images, self.decision.rows())

    def save(self, out: str | os.PathLike, raw: bool = False) -> Path:
        """Write the table to ``out`` (:meth:`facecli.batch.TableRun.write`)."""
        return self.write(out, raw)


@dataclass
class PhotoData:
    """Photo evidence of a table's rows: which rows have a photo matcher vector (``has``; face 0 of a readable
    image) and the vectors (float16, zeros elsewhere); the washed-out rows (``probes``) with their probe
    thumbnails and usable masks; and ``thumbs(rows)``, the plain thumbnails of any rows, loaded on demand."""

    has: np.ndarray
    pvec: np.ndarray
    probes: np.ndarray
    pthumb: np.ndarray
    usable: np.ndarray
    thumbs: Any


def _stack(values: Any, rows: np.ndarray, empty: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.stack([values[r] for r in rows]).astype(dtype) if len(rows) else np.zeros((0, *empty), dtype)


def hidden_arrays(table: pd.DataFrame, dim: int) -> tuple[np.ndarray, PhotoData | None]:
    """The identity vectors (rows without one are zero) and the photo data of a table with hidden columns."""
    vec = np.zeros((len(table), dim), np.float32)
    for r, v in enumerate(table["_vec"]):
        if isinstance(v, np.ndarray) and v.size == dim:
            vec[r] = v
    pv = table["_pvec"].to_numpy()
    has = np.array([isinstance(v, np.ndarray) and v.size > 0 for v in pv], bool)
    if not has.any():
        return vec, None
    pdim = next(v.size for v in pv if isinstance(v, np.ndarray) and v.size)
    pvec = np.zeros((len(table), pdim), np.float16)
    pvec[has] = _stack(pv, np.flatnonzero(has), (pdim,), np.float16)
    probes = np.flatnonzero([isinstance(v, np.ndarray) for v in table["_pthumb"]])
    thumb = table["_thumb"].to_numpy()
    pt, us = table["_pthumb"].to_numpy(), table["_usable"].to_numpy()
    return vec, PhotoData(has, pvec, probes, _stack(pt, probes, (64, 64), np.uint8),
                          _stack(us, probes, (64, 64), bool), lambda rows: _stack(thumb, rows, (64, 64), np.uint8))


def group_table(table: pd.DataFrame, dim: int, how: Grouping) -> pd.DataFrame:
    """:func:`group` on a table that still has its hidden columns."""
    vectors, photo = hidden_arrays(table, dim)
    return group(table.drop(columns=list(HIDDEN)), vectors, photo, how)


# ------------------------------------------------------------------ streamed parts


def write_part(part: Path, table: pd.DataFrame) -> None:
    """A part's file: its rows as JSON (strings stay strings) and, first, its hidden arrays beside them."""
    import io
    import json

    from facecli.atomic import _json_default, strict_json, write_bytes, write_text

    arrays = {}
    for col in HIDDEN:
        vals = [v for v in table[col] if isinstance(v, np.ndarray)]
        has = np.array([isinstance(v, np.ndarray) for v in table[col]], bool)
        arrays[col] = np.stack(vals) if vals else np.zeros((0,), np.float32)
        arrays[col + "_has"] = has
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(_arrays_of(part), buf.getvalue())
    rows = table.drop(columns=list(HIDDEN)).astype(object).where(table.drop(columns=list(HIDDEN)).notna(), None)
    write_text(part, "".join(json.dumps(strict_json(r), ensure_ascii=False, default=_json_default) + "\n"
                             for r in rows.to_dict(orient="records")))


def read_part(part: Path, arrays: tuple[str, ...] = HIDDEN) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """A part written by :func:`write_part`: its rows, and of its hidden ``arrays`` each one's stacked values
    and ``<name>_has`` (which rows have one). FacecliError when it cannot be read or does not add up."""
    import json

    try:
        rows = [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines() if line] \
            if part.suffix == ".jsonl" else []
        with np.load(_arrays_of(part), allow_pickle=False) as z:
            got = {k: z[k] for k in z.files if k.removesuffix("_has") in arrays}
    except (OSError, ValueError, KeyError) as exc:
        raise FacecliError(f"{part.parent}: part {part.name} cannot be read ({exc}); remove {part.parent} and "
                           "run again") from None
    table = pd.DataFrame(rows, columns=["path", "face", "face_status", "restored", "box", "error"])
    for col in arrays:
        has, vals = got.get(col + "_has"), got.get(col)
        if has is None or vals is None or (part.suffix == ".jsonl" and len(has) != len(table)) or \
                int(has.sum()) != (len(vals) if vals.ndim > 1 else 0):
            raise FacecliError(f"{part.parent}: part {part.name} does not match its arrays; remove {part.parent} "
                               "and run again")
    return table, got


def _spread(has: np.ndarray, vals: np.ndarray, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    out = np.zeros((len(has), *shape), dtype)
    if has.any():
        out[has] = vals
    return out


def read_parts(files: list[Path], dim: int) -> tuple[pd.DataFrame, np.ndarray, PhotoData | None]:
    """Every part's rows, identity vectors and photo data (photo matcher vectors as float16; thumbnails read on
    demand), without a Python object per row."""
    tables, vecs, probes, pthumbs, usables, starts = [], [], [], [], [], []
    start = 0
    for f in files:
        t, a = read_part(f, ("_vec", "_pthumb", "_usable", "_pvec"))
        tables.append(t)
        vecs.append(_spread(a["_vec_has"], a["_vec"], (dim,), np.float32))
        probes.append(start + np.flatnonzero(a["_pthumb_has"]))
        pthumbs.append(a["_pthumb"].reshape(-1, *_side(a["_pthumb"])))
        usables.append(a["_usable"].reshape(-1, *_side(a["_usable"])).astype(bool))
        starts.append(start)
        start += len(t)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    vectors = np.concatenate(vecs) if vecs else np.zeros((0, dim), np.float32)
    has, got = [], []
    for f in files:
        _, a = read_part(f, ("_pvec",))
        has.append(a["_pvec_has"])
        got.append(a["_pvec"])
    if not any(h.any() for h in has):  # no photo evidence (--no-photo)
        return table, vectors, None
    pdim = next((v.shape[1] for v in got if v.ndim == 2), 1)
    pvec = [_spread(h, v.reshape(-1, pdim), (pdim,), np.float16) for h, v in zip(has, got, strict=True)]
    bounds = np.asarray(starts)

    def thumbs(rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), 64, 64), np.uint8)
        which = np.searchsorted(bounds, rows, side="right") - 1
        for k in np.unique(which):
            _, a = read_part(files[k], ("_thumb",))
            at = np.cumsum(a["_thumb_has"]) - 1
            sel = which == k
            out[sel] = a["_thumb"][at[rows[sel] - bounds[k]]]
        return out

    return table, vectors, PhotoData(np.concatenate(has), np.concatenate(pvec), np.concatenate(probes),
                                     np.concatenate(pthumbs), np.concatenate(usables), thumbs)


def _side(a: np.ndarray) -> tuple[int, int]:
    return (a.shape[1], a.shape[2]) if a.ndim == 3 else (64, 64)


def _arrays_of(part: Path) -> Path:
    return part.with_suffix(".npz")


def join_parts(how: Grouping, dim: int, raw: bool) -> Any:
    """The streamed run's join: read every part, group all faces at once, write the output."""

    def join(files: list[Path], out: Path) -> None:
        from facecli.outputs import write_table

        table, vectors, photo = read_parts(files, dim)
        final = group(table, vectors, photo, how)
        write_table(out, final, raw=raw)
        join.table = final

    join.table = None
    return join
