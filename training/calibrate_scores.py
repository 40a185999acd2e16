"""Calibrate an identity model's scores on held-out people and write the result into its card.

    python -m facecli.training.calibrate_scores ../shared/data/FACECOM --model models/identity.onnx --flip

Data: FACECOM Task B train, split by person exactly as training did (:func:`facecli.splits.split_by_identity`,
seed 0, 20% held out); the training people's clean photos serve as further different-person photos. With
``--flip`` the card records flip-averaged embeddings first (:func:`facecli.face.preprocess.flip_average`), so
everything below is measured on what inference will compute. Three things are fitted, sun-glared images left
out (the face is gone):

- the score scale (:class:`facecli.card.ScoreScale`): its slope is a logistic fit of genuine against stranger
  best cosines on log(1 - cos), both weighted equally (open set: the gallery holds the training people's clean
  photos and every held-out image is a stranger to it; genuine: each held-out image against the other clean
  photos of its own person, never its own photo); its centre puts the design card's strict threshold, score
  0.8, at a per-comparison false-match rate of 1e-5, so that ``--threshold 0.8`` means the same whatever the
  model;
- the false-match curve (:class:`facecli.calibration.FalseMatchCurve`): per comparison, the share of
  different-person pairs (every held-out image against every clean photo of another held-out person: people
  the model never saw, as in a user's gallery) whose score reaches each score, from 0.5 down to what the pairs
  can measure;
- the card's fallback threshold and stranger curve (for models read without the false-match curve): the
  lowest score on a 0.01 grid that at most ``--fpir`` of the strangers' best scores reach.

The new card is written through :class:`facecli.card.ModelCard` into the ONNX metadata, atomically. With
``--flip`` the embeddings change, so galleries built before must be rebuilt (their model hash no longer
matches); without it the weights and embeddings are untouched and the old file's sha256 goes to ``embeds_like``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from facecli.training.recipe import recipe_main

from facecli.calibration import fit_curve
from facecli.card import ModelCard, ScoreScale
from facecli.protocols import FACE_GONE_WEIGHT
from facecli.runtime import METADATA_KEY, OnnxModel, load_model
from facecli.scan import resolve_identity_root, scan_identity_folder
from facecli.splits import split_by_identity

CURVE_AT = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98, 0.99)
STRICT_SCORE, STRICT_FMR = 0.8, 1e-5  # --threshold 0.8: 1% of strangers for a gallery of 1,000 photos
FMR_RATES = (0.5, 0.3, 0.2, 0.1, 5e-2, 3e-2, 2e-2, 1e-2, 5e-3, 3e-3, 2e-3, 1e-3, 5e-4, 3e-4, 2e-4, 1e-4, 5e-5,
             3e-5, 2e-5, 1e-5, 5e-6, 3e-6, 2e-6, 1e-6)


def fit_log_logistic(genuine: np.ndarray, stranger: np.ndarray) -> tuple[float, float]:
    """(centre, slope) of score = 1 / (1 + ((1 - cos) / (1 - centre)) ** slope), by Newton's method on the
    class-balanced logistic loss in x = -log(1 - cos)."""
    x = -np.log(np.maximum(1.0 - np.r_[genuine, stranger], 1e-6))
    y = np.r_[np.ones(len(genuine)), np.zeros(len(stranger))]
    w = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    a, b = 1.0, -4.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(a * x + b)))
        g, h = w * (p - y), w * p * (1 - p)
        hess = np.array([[np.sum(h * x * x), np.sum(h * x)], [np.sum(h * x), np.sum(h)]])
        step = np.linalg.solve(hess, [np.sum(g * x), np.sum(g)])
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(1.0 - np.exp(b / a)), float(a)


def write_card(model: Path, card: ModelCard) -> None:
    """Replace the card in ``model``'s ONNX metadata with ``card`` (atomically: fsynced, then one rename)."""
    import onnx

    from facecli.atomic import write_bytes

    proto = onnx.load_from_string(model.read_bytes())
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    entry.value = json.dumps(card.to_dict())
    write_bytes(model, proto.SerializeToString())


def impostor_scores(v: np.ndarray, ident: np.ndarray, others: np.ndarray, other_ident: np.ndarray) -> np.ndarray:
    """Cosines of every row of ``v`` against every row of ``others`` of another person."""
    out = []
    for s in range(0, len(v), 512):
        sims = v[s : s + 512] @ others.T
        out.append(sims[ident[s : s + 512, None] != other_ident[None, :]])
    return np.concatenate(out)


@dataclass
class CalibrateOptions:
    """What :func:`calibrate` takes (``python -m facecli.training.calibrate_scores --help``)."""

    data: Path = field(metadata={"help": "FACECOM folder holding Task_A/ and Task_B/"})
    model: Path = field(default=Path("models/identity.onnx"), metadata={"help": "identity model to update"})
    fraction: float = field(default=0.2, metadata={"help": "share of people held out"})
    seed: int = field(default=0, metadata={"help": "split seed"})
    fpir: float = field(default=0.01, metadata={"help": "share of strangers the fallback threshold may accept"})
    flip: bool = field(default=False, metadata={"help": "record flip-averaged embeddings in the card first"})
    dry_run: bool = field(default=False, metadata={"help": "print the fit, write nothing"})


def main() -> None:
    recipe_main(CalibrateOptions, calibrate, __doc__)


@dataclass
class HeldOut:
    """The held-out people's images embedded (``vectors``, ``status``, ``ok``; ``ident``, ``stem`` and ``kind``
    per image) and each one's best cosine (``stranger``) against the training people's clean photos (the
    gallery: ``gallery_rows`` of them, of ``gallery_ident``)."""

    vectors: np.ndarray
    status: np.ndarray
    ok: np.ndarray
    ident: np.ndarray
    stem: np.ndarray
    kind: np.ndarray
    stranger: np.ndarray
    gallery_rows: list[int]
    gallery_ident: np.ndarray


def embed_held_out(model: OnnxModel, args: CalibrateOptions) -> HeldOut:
    """Embed FACECOM Task B train's held-out people (the person split of ``args``) and the training people's
    clean photos with ``model``."""
    from facecli.options import RunOptions
    from facecli.recognise import embed_images

    items = scan_identity_folder(resolve_identity_root(args.data / "Task_B", "train"))
    tr, va = split_by_identity(items, args.fraction, args.seed)
    run = RunOptions()
    gal = [i for i in tr if not items[i].distortion]
    gv = embed_images(model, [items[i].path for i in gal], run).vectors
    emb = embed_images(model, [items[i].path for i in va], run)
    return HeldOut(emb.vectors, np.asarray(emb.face_status), emb.ok,
                   np.array([items[i].identity for i in va]), np.array([items[i].source_stem for i in va]),
                   np.array([items[i].distortion or "clean" for i in va]), (emb.vectors @ gv.T).max(1), gal,
                   np.array([items[i].identity for i in gal]))


def calibrate(args: CalibrateOptions) -> None:
    """Fit the score scale, the false-match curve and the fallback threshold of ``args.model`` on held-out
    people and write them into its card (see the module docstring)."""
    raw = args.model.read_bytes()
    model = load_model(args.model, "identity", "cpu")
    card = model.card
    flipped_now = args.flip and not card.preprocessing.flip  # the embeddings change: old galleries must go
    if flipped_now:
        card = dataclasses.replace(card, preprocessing=card.preprocessing.replace(flip=True), embeds_like=())
        model.card = card
    held = embed_held_out(model, args)
    v, status, ident, stem, kind, ok = held.vectors, held.status, held.ident, held.stem, held.kind, held.ok
    gal, gid, stranger = held.gallery_rows, held.gallery_ident, held.stranger
    clean = kind == "clean"
    sims = v @ v[clean].T
    same = ident[:, None] == ident[clean][None, :]
    own = same & (stem[:, None] == stem[clean][None, :])
    genuine = np.where(same & ~own, sims, -2.0).max(1)
    face = (kind != "sunny") & ok
    _, slope = fit_log_logistic(genuine[face & (genuine > -2)], stranger[face])
    # different-person pairs among held-out people only: people the model never saw, as in a user's gallery.
    # (Pairs with the training people's photos have a lighter tail: 1e-3 at cosine 0.949 against 0.955.)
    others, other_ident = v[clean & ok], ident[clean & ok]
    imp = impostor_scores(v[face], ident[face], others, other_ident)
    # the centre anchors the design card's strict threshold: score STRICT_SCORE is a false-match rate of
    # STRICT_FMR for one comparison, whatever the model (so --threshold 0.8 keeps meaning a strict decision)
    strict_cos = float(np.quantile(imp, 1.0 - STRICT_FMR))
    centre = 1.0 - (1.0 - strict_cos) * (1.0 / STRICT_SCORE - 1.0) ** (-1.0 / slope)
    n_gen, n_str = int((face & (genuine > -2)).sum()), int(face.sum())
    people = f"{len(set(ident))} held-out people (person split seed {args.seed}, {args.fraction:.0%})"
    scale = ScoreScale(round(centre, 5), round(slope, 3), fitted_on=(
        f"FACECOM Task B train, {people}; cross-photo genuine {n_gen} vs open-set strangers {n_str} "
        f"(gallery: {len(gal)} clean photos of {len(set(gid))} training people) for the slope; the centre puts "
        f"score {STRICT_SCORE} at a false-match rate of {STRICT_FMR:g} per comparison; sunny left out"
        + ("; flip-averaged embeddings" if card.preprocessing.flip else "")))
    curve = fit_curve(scale(imp.astype(np.float64)), FMR_RATES, fitted_on=(
        f"FACECOM Task B train, {people}: {len(imp):,} different-person comparisons (each of {int(face.sum())} "
        f"held-out images, clean and six degraded kinds, sunny left out, against the {len(others)} clean photos "
        "of the other held-out people)"))
    best = np.asarray(scale(stranger), np.float64)
    best = np.where(status == "fallback", best * FACE_GONE_WEIGHT, best)
    strangers = tuple((t, round(float((best >= t).mean()), 4)) for t in CURVE_AT)
    grid = np.round(np.arange(0.5, 1.0, 0.01), 2)
    threshold = float(next(t for t in grid if (best >= t).mean() <= args.fpir))
    card = dataclasses.replace(
        card, score_scale=scale, threshold=threshold, stranger_curve=strangers, false_match=curve,
        threshold_source=(f"open set on held-out people: at most {args.fpir:.2%} of strangers' best scores reach it "
                          f"({(best >= threshold).mean():.2%} of {len(best)}, gallery of {len(gal)} photos)"),
        preprocessing=card.preprocessing.replace(restore="auto"))
    if not flipped_now:  # same weights, same embeddings: galleries built with the old file stay valid
        card = dataclasses.replace(card, embeds_like=tuple(sorted({*card.embeds_like, hashlib.sha256(raw).hexdigest()})))
    print(json.dumps({"score_scale": scale.to_dict(), "threshold": threshold, "false_match": curve.to_dict(),
                      "strangers": len(best), "flip": card.preprocessing.flip}, indent=1))
    if args.dry_run:
        return
    write_card(args.model, card)
    print(f"wrote {args.model}")


if __name__ == "__main__":
    main()
