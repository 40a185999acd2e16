"""Matching probes against a gallery and scoring the result when the true identities are known.

Used alike by ``facecli match``, ``facecli evaluate identity``, ``facecli calibrate`` and model selection
during training, so every figure is computed one way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from facecli.gallery import Gallery, build_templates
from facecli.metrics import identification_metrics, verification_metrics
from facecli.metrics import top_k as top_k_rows
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


def match_embeddings(
    gallery: Gallery,
    probes: np.ndarray,
    threshold: float,
    top_k: int = 5,
    true_ids: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    seed: int = 0,
) -> MatchResult:
    """Match probe embeddings: nearest identities, best similarity, accepted when similarity >= threshold.

    With ``true_ids`` the result carries identification metrics (top-1, macro-F1, DIR, FPIR, open-set
    accuracy), 1:1 verification metrics over probe x identity pairs, and the same per distortion ``kinds``.
    """
    scored = true_ids is not None
    names, sims, full = rank(gallery, probes, top_k, exact=scored)
    table = decision_table(names, sims, threshold)
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

    def block(mask: np.ndarray) -> dict[str, Any]:
        ident = identification_metrics(np.asarray(true_ids, dtype=object)[mask], np.asarray(pred, dtype=object)[mask],
                                       best[mask], in_gallery[mask], threshold)
        gen, imp = pair_scores(full, true_col, mask, rng)
        ver = verification_metrics(gen, imp, threshold)
        return {**ident, **{f"verification_{k}": v for k, v in ver.items()}}, gen, imp

    everything = np.ones(len(true_ids), bool)
    metrics, genuine, impostor = block(everything)
    metrics["threshold"] = float(threshold)
    metrics["gallery_identities"] = len(gallery.identities)
    per_kind = None
    if kinds is not None:
        kinds_arr = np.asarray(kinds, dtype=object)
        rows = {}
        for kind in sorted(set(kinds)):
            m, _, _ = block(kinds_arr == kind)
            rows[kind or "clean"] = m
        per_kind = pd.DataFrame(rows).T
        per_kind.index.name = "distortion"
    return MatchResult(table, metrics, per_kind, genuine, impostor)


def decision_table(names: list[list[str]], sims: np.ndarray, threshold: float) -> pd.DataFrame:
    """One row per probe: identity (the nearest, or "unknown" below ``threshold``), similarity, accepted,
    nearest, and the top-k names and similarities as JSON lists."""
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


def rank(gallery: Gallery, probes: np.ndarray, top_k: int, exact: bool):
    """The ``top_k`` nearest identities of each probe and their similarities; with ``exact`` (metrics need
    every probe x identity similarity anyway) ranked from that full matrix, also returned as (names, matrix)."""
    if not len(probes):
        return [], np.zeros((0, top_k)), None
    if not exact:
        names, sims = gallery.search(probes, top_k)
        return names, sims, None
    col_names, full = gallery.similarity_matrix(probes)
    idx, sims = top_k_rows(full, top_k)
    return [[col_names[j] for j in row] for row in idx], sims, (col_names, full)


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


def run_protocol(
    items: Sequence[IdentityImage], embeddings: np.ndarray, ok: np.ndarray, protocol: str, threshold: float,
    top_k: int = 5,
) -> tuple[MatchResult, list[int]] | None:
    """Evaluate ``protocol`` ("facecom", "cross_photo" or "clean_cross_photo") on embedded ``items``.

    ``ok`` marks the items whose embedding exists (readable files). Returns the match result and the item
    indices of its probes, or None when the protocol has no gallery or no probe in this data.
    """
    gal, probes = SPLITS[protocol](items)
    gal = [i for i in gal if ok[i]]
    probes = [i for i in probes if ok[i]]
    if not gal or not probes:
        return None
    gallery = in_memory_gallery(embeddings[gal], [items[i].identity for i in gal], threshold)
    res = match_embeddings(gallery, embeddings[probes], threshold, top_k,
                           [items[i].identity for i in probes], [items[i].distortion for i in probes])
    res.metrics["protocol"] = protocol
    return res, probes
