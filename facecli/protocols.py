"""Matching probes against a gallery and scoring the result when the true identities are known.

Used alike by ``facecli match``, ``facecli evaluate identity``, ``facecli calibrate`` and model selection
during training, so every figure is computed one way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from facecli.gallery import Gallery, build_templates
from facecli.metrics import identification_metrics, verification_metrics
from facecli.metrics import top_k as top_k_rows
from facecli.photo import PhotoRanking
from facecli.scan import IdentityImage

MAX_IMPOSTOR_PAIRS = 5_000_000


@dataclass
class MatchResult:
    """Per-probe decisions (``table``) and, with ground truth, the metrics and similarity scores."""

    table: pd.DataFrame  # identity, similarity, accepted, top_k, top_k_similarity (+ true_identity)
    metrics: dict[str, Any] = field(default_factory=dict)
    per_kind: pd.DataFrame | None = None
    genuine: np.ndarray = field(default_factory=lambda: np.zeros(0))
    impostor: np.ndarray = field(default_factory=lambda: np.zeros(0))


FACE_GONE_WEIGHT = 0.5  # face evidence of a face the glare washed out (face_status "fallback") counts half
NO_FACE_WEIGHT = 1e-3  # face "evidence" of an image with no face found (not_found): below any useful threshold


@dataclass
class Evidence:
    """What besides the face vectors a match weighs (all optional).

    scale: the model's cosine-to-score map (:class:`facecli.card.ScoreScale`); None keeps cosines.
    votes: per probe, photo evidence (:class:`facecli.photo.PhotoVote`) or None.
    face_gone: per probe, True where the face was washed out (its face scores count FACE_GONE_WEIGHT).
    no_face: per probe, True where no face was found (face_status "not_found": the centred crop's vector
        says nothing of a person, so its face scores count NO_FACE_WEIGHT; only photo evidence can accept it).
    """

    scale: Any = None
    votes: Sequence[Any] | None = None
    face_gone: Sequence[bool] | None = None
    no_face: Sequence[bool] | None = None

    def face_scores(self, cos: np.ndarray, probes: Sequence[int] | None = None) -> np.ndarray:
        """Face similarities (one row per probe; ``probes``: which probes the rows are, default all) on the
        score scale, washed-out faces discounted, probes without a face all but silenced (their ranking kept)."""
        s = np.asarray(self.scale(cos) if self.scale is not None else cos, dtype=np.float32)
        for flags, weight in ((self.face_gone, FACE_GONE_WEIGHT), (self.no_face, NO_FACE_WEIGHT)):
            if flags is not None and len(s):
                rows = np.asarray(flags, bool)
                if probes is not None:
                    rows = rows[np.asarray(probes, np.int64)]
                s = np.where(rows[:, None], s * weight, s).astype(np.float32)
        return s

    def vote(self, i: int) -> Any:
        return None if self.votes is None else self.votes[i]


def match_embeddings(
    gallery: Gallery,
    probes: np.ndarray,
    threshold: float,
    top_k: int = 5,
    true_ids: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    seed: int = 0,
    evidence: Evidence | None = None,
) -> MatchResult:
    """Match probe embeddings: nearest identities, best similarity, accepted when similarity >= threshold.

    With ``evidence``, similarities are scores on the model's scale, washed-out faces count less, and photo
    evidence raises its identity's score to the photo score (:func:`fuse`); the table's ``evidence`` column
    says which decided: "face", "photo" (photo evidence named an identity the face did not, or lifted it
    over the threshold) or "both". With ``true_ids`` the result carries identification metrics (top-1,
    macro-F1, DIR, FPIR, open-set accuracy), 1:1 verification metrics over probe x identity pairs, and the
    same per distortion ``kinds``.
    """
    import pandas as pd
    scored = true_ids is not None
    ev = evidence or Evidence()
    names, sims, full, decided = rank(gallery, probes, top_k, exact=scored, evidence=ev, threshold=threshold)
    table = decision_table(names, sims, threshold)
    no_face = list(ev.no_face) if ev.no_face is not None else [False] * len(decided)
    # a probe with no face found has no face evidence: "none" unless photo evidence spoke
    table["evidence"] = ["none" if gone and how == "face" else how for how, gone in zip(decided, no_face, strict=True)]
    best, pred = table["similarity"].to_numpy(), table["nearest"].tolist()
    if not scored:
        return MatchResult(table)
    true_ids = list(true_ids)
    table["true_identity"] = true_ids
    in_gallery = np.isin(np.asarray(true_ids, dtype=object), np.asarray(gallery.identities, dtype=object))
    table["in_gallery"] = in_gallery
    col_names, full = full if full is not None else gallery.similarity_matrix(probes)
    col = {n: i for i, n in enumerate(col_names)}
    true_col = np.array([col.get(t, -1) for t in true_ids])
    rng = np.random.default_rng(seed)

    def figures(mask: np.ndarray) -> dict[str, Any]:
        ident = identification_metrics(np.asarray(true_ids, dtype=object)[mask], np.asarray(pred, dtype=object)[mask],
                                       best[mask], in_gallery[mask], threshold)
        gen, imp = pair_scores(full, true_col, mask, rng)
        ver = verification_metrics(gen, imp, threshold)
        return {**ident, **{f"verification_{k}": v for k, v in ver.items()}}, gen, imp

    everything = np.ones(len(true_ids), bool)
    metrics, genuine, impostor = figures(everything)
    metrics["threshold"] = float(threshold)
    metrics["gallery_identities"] = len(gallery.identities)
    per_kind = None
    if kinds is not None:
        kinds_arr = np.asarray(kinds, dtype=object)
        rows = {}
        for kind in sorted(set(kinds)):
            m, _, _ = figures(kinds_arr == kind)
            rows[kind or "clean"] = m
        per_kind = pd.DataFrame(rows).T
        per_kind.index.name = "distortion"
    return MatchResult(table, metrics, per_kind, genuine, impostor)


def decision_table(names: list[list[str]], sims: np.ndarray, threshold: float) -> pd.DataFrame:
    """One row per probe: identity (the nearest, or "unknown" below ``threshold``), similarity, accepted,
    nearest, and the top-k names and similarities as JSON lists."""
    import pandas as pd
    best = sims[:, 0] if len(names) else np.zeros(0)
    pred = [n[0] if n else "" for n in names]
    accepted = best >= threshold
    return pd.DataFrame({
        "identity": [p if a else "unknown" for p, a in zip(pred, accepted, strict=True)],
        "similarity": best.astype(float),
        "accepted": accepted,
        "nearest": pred,
        # JSON lists, so that any identity name (with "|", commas or quotes) round-trips
        "top_k": [json.dumps(list(n), ensure_ascii=False) for n in names],
        "top_k_similarity": [json.dumps([round(float(v), 4) for v in row[: len(n)]])
                             for row, n in zip(sims, names, strict=True)],
    })


def rank(gallery: Gallery, probes: np.ndarray, top_k: int, exact: bool, evidence: Evidence | None = None,
         threshold: float = 0.5):
    """The ``top_k`` nearest identities of each probe, their similarities (scores with ``evidence``) and which
    evidence decided each probe; with ``exact`` (metrics need every probe x identity similarity anyway)
    ranked from that full matrix, also returned as (names, matrix)."""
    ev = evidence or Evidence()
    if not len(probes):
        return [], np.zeros((0, top_k)), None, []
    if not exact:
        names, cos = gallery.search(probes, top_k)
        sims = ev.face_scores(cos)
        decided = []
        for i in range(len(names)):
            v = ev.vote(i)
            if isinstance(v, PhotoRanking):
                first = names[i][:1]
                names[i], sims[i] = by_photo(names[i], sims[i], v, lambda ids, i=i: ev.face_scores(
                    gallery.identity_cosines(probes[i], ids)[None], [i])[0])
                decided.append(PHOTO_NEAREST if names[i][:1] != first else "face")
                continue
            names[i], sims[i], how = fuse(names[i], sims[i], v, threshold)
            decided.append(how)
        return names, sims, None, decided
    col_names, full = gallery.similarity_matrix(probes)
    full = ev.face_scores(full)
    col = {n: j for j, n in enumerate(col_names)}
    face_top = full.argmax(axis=1)
    decided = ["face"] * len(probes)
    ranked: dict[int, PhotoRanking] = {}
    for i in range(len(probes)):
        v = ev.vote(i)
        if isinstance(v, PhotoRanking):
            ranked[i] = v
        elif v is not None and v.identity in col:
            j = col[v.identity]
            decided[i] = "both" if face_top[i] == j and full[i, j] >= threshold else "photo"
            full[i, j] = max(full[i, j], v.score)
    idx, sims = top_k_rows(full, top_k)
    names = [[col_names[j] for j in row] for row in idx]
    for i, v in ranked.items():
        first = names[i][:1]
        names[i], sims[i] = by_photo(names[i], sims[i], v,
                                     lambda ids, i=i: np.array([full[i, col[n]] for n in ids], np.float32))
        decided[i] = PHOTO_NEAREST if names[i][:1] != first else "face"
    return names, sims, (col_names, full), decided


PHOTO_NEAREST = "photo_nearest"  # evidence of a probe whose face is gone and whose nearest identity the photo matcher
# named (a PhotoRanking that changed the face's first identity)


def by_photo(names: list[str], sims: np.ndarray, ranking: PhotoRanking,
             scores_of: Callable[[list[str]], np.ndarray]) -> tuple[list[str], np.ndarray]:
    """One probe's identities ranked by the photo matcher (``ranking``, those in the gallery), then by the face
    (``names``, the rest), ``len(sims)`` of them, each with its own face score (``scores_of(identities)`` for
    those the face did not rank). Scores are not lifted, so they need not fall along the list."""
    k = len(sims)
    face = {n: float(v) for n, v in zip(names, sims, strict=False)}
    order = list(dict.fromkeys([*ranking.identities, *names]))
    missing = [n for n in order[:k] if n not in face]
    if missing:
        got = scores_of(missing)
        face.update({n: float(v) for n, v, in zip(missing, got, strict=True) if np.isfinite(v)})
    order = [n for n in order if n in face][:k]
    out = np.full(k, np.nan, np.float32)
    out[: len(order)] = [face[n] for n in order]
    return order, out


def fuse(names: list[str], sims: np.ndarray, vote: Any, threshold: float) -> tuple[list[str], np.ndarray, str]:
    """One probe's ranked identities and scores with its photo ``vote`` (or None) fused in: the voted
    identity's score becomes at least the photo score, and the list is re-ranked. Returns (names, scores,
    evidence) with evidence "face", "photo" or "both"."""
    if vote is None:
        return names, sims, "face"
    k = len(sims)
    scores = dict(zip(names, (float(v) for v in sims[: len(names)]), strict=True))
    face_first = names[0] if names else None
    how = "both" if face_first == vote.identity and scores.get(face_first, -2.0) >= threshold else "photo"
    scores[vote.identity] = max(scores.get(vote.identity, -2.0), vote.score)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:k]
    out = np.full(k, np.nan, np.float32)
    out[: len(ranked)] = [v for _, v in ranked]
    return [n for n, _ in ranked], out, how


def pair_scores(full: np.ndarray, true_col: np.ndarray, mask: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Genuine (probe, own identity) and impostor (probe, other identity) similarities of the ``mask`` probes;
    impostors are subsampled (seeded) beyond :data:`MAX_IMPOSTOR_PAIRS`."""
    rows = np.flatnonzero(mask)
    ok = true_col[rows] >= 0
    gen = full[rows[ok], true_col[rows][ok]]
    neg = np.ones((len(rows), full.shape[1]), bool)
    neg[np.flatnonzero(ok), true_col[rows][ok]] = False
    imp = full[rows][neg]
    if len(imp) > MAX_IMPOSTOR_PAIRS:
        imp = rng.choice(imp, MAX_IMPOSTOR_PAIRS, replace=False)
    return gen, imp


def in_memory_gallery(embeddings: np.ndarray, identities: Sequence[str], threshold: float = 0.5,
                      per_image: bool = True) -> Gallery:
    """A gallery that is not saved (for evaluation protocols).

    ``per_image`` (default) keeps one vector per reference photo and scores an identity by its best photo;
    otherwise one template (mean embedding) per identity.
    """
    import pandas as pd
    if per_image:
        counts = pd.Series(list(identities)).value_counts().to_dict()
        return Gallery.create(list(identities), embeddings, counts, {}, threshold, per_image=True)
    names, templates, counts = build_templates(embeddings, identities)
    return Gallery.create(names, templates, dict(zip(names, counts, strict=True)), {}, threshold)


def facecom_split(items: Sequence[IdentityImage]) -> tuple[list[int], list[int]]:
    """FACECOM's protocol: gallery = every clean image, probes = every distorted image."""
    gallery = [i for i, it in enumerate(items) if not it.distortion]
    probes = [i for i, it in enumerate(items) if it.distortion]
    return gallery, probes


def cross_photo_split(items: Sequence[IdentityImage], clean_probes: bool = False) -> tuple[list[int], list[int]]:
    """Cross-photo protocol: a probe's own photo is never in the gallery.

    For every identity, its clean photos sorted by file name alternate: clean[0::2] go to the gallery (an
    identity with one photo stays in as a distractor) and the probes are the distorted copies of clean[1::2]
    (``clean_probes``: the clean[1::2] photos themselves, the "clean cross-photo" protocol). A model that
    matches backgrounds or photos rather than faces fails this test.
    """
    photos: dict[str, list[str]] = {}
    for it in items:
        if not it.distortion:
            photos.setdefault(it.identity, []).append(it.source_stem)
    held = {ident: set(sorted(set(stems))[1::2]) for ident, stems in photos.items()}
    gallery, probes = [], []
    for i, it in enumerate(items):
        probe_photo = it.source_stem in held.get(it.identity, set())
        if not it.distortion and not probe_photo:
            gallery.append(i)
        elif probe_photo and bool(it.distortion) != clean_probes:
            probes.append(i)
    return gallery, probes


SPLITS = {
    "facecom": facecom_split,
    "cross_photo": cross_photo_split,
    "clean_cross_photo": lambda items: cross_photo_split(items, clean_probes=True),
}


@dataclass
class PhotoData:
    """Photo evidence inputs of every item of an evaluation: photo matcher vectors, gallery thumbnails, probe
    thumbnails and their usable masks (:mod:`facecli.photo`), in item order."""

    vectors: np.ndarray
    thumbs: np.ndarray
    probe_thumbs: np.ndarray
    usable: np.ndarray


def run_protocol(
    items: Sequence[IdentityImage], embeddings: np.ndarray, ok: np.ndarray, protocol: str,
    threshold: float | Callable[[int], Any],
    top_k: int = 5, *, scale: Any = None, face_status: Sequence[str] | None = None, photo: PhotoData | None = None,
) -> tuple[MatchResult, list[int]] | None:
    """Evaluate ``protocol`` ("facecom", "cross_photo" or "clean_cross_photo") on embedded ``items``.

    ``ok`` marks the items whose embedding exists (readable files). ``threshold`` is a score, or a function of
    the protocol gallery's photo count returning a :class:`facecli.decision.Decision` (then the metrics record
    its source and FPIR too). With ``scale`` similarities are scores;
    ``face_status`` discounts washed-out faces; ``photo`` adds photo evidence as ``match`` does (the gallery's
    photos are the protocol's gallery images). Returns the match result and the item indices of its probes,
    or None when the protocol has no gallery or no probe in this data.
    """
    from facecli.gallery import PhotoSet
    from facecli.photo import FACE_IDENTITIES, PhotoView, face_gone, photo_candidates, vote

    gal, probes = SPLITS[protocol](items)
    gal = [i for i in gal if ok[i]]
    probes = [i for i in probes if ok[i]]
    if not gal or not probes:
        return None
    decision = None if isinstance(threshold, int | float) else threshold(len(gal))
    if decision is not None:
        threshold = decision.threshold
    gallery = in_memory_gallery(embeddings[gal], [items[i].identity for i in gal], threshold)
    status = [face_status[i] if face_status is not None else "" for i in probes]
    votes = None
    if photo is not None:
        photos = PhotoSet([items[i].identity for i in gal], photo.vectors[gal], photo.thumbs[gal], {})
        names, cos = gallery.search(embeddings[probes], FACE_IDENTITIES)
        best = scale(cos[:, 0]) if scale is not None else cos[:, 0]
        views = [PhotoView(None, None, photo.probe_thumbs[i], photo.usable[i]) for i in probes]
        need, cands = photo_candidates(photos, names, best, status, views,
                                       lambda ks: photo.vectors[[probes[k] for k in ks]])
        found = vote(photos, cands, [views[k].probe for k in need], [views[k].usable for k in need],
                     [face_gone(status[k]) for k in need])
        votes = [None] * len(probes)
        for k, v in zip(need, found, strict=True):
            votes[k] = v
    evidence = Evidence(scale, votes, [s == "fallback" for s in status], [s == "not_found" for s in status])
    res = match_embeddings(gallery, embeddings[probes], threshold, top_k,
                           [items[i].identity for i in probes], [items[i].distortion for i in probes],
                           evidence=evidence)
    res.metrics["protocol"] = protocol
    res.metrics["gallery_photos"] = len(gal)
    if decision is not None:
        res.metrics.update(threshold_source=decision.source, predicted_fpir=decision.fpir)
    return res, probes
