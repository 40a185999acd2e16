"""Fit an identity model's score scale and default threshold on held-out people, and write them into its card.

    python -m facecli.training.score_scale ../shared/data/FACECOM --model models/identity.onnx

Data: FACECOM Task B train, split by person exactly as training did (:func:`facecli.splits.split_by_identity`,
seed 0, 20% held out). Open set: the gallery holds the training people's clean photos; every image of the
held-out people (clean and distorted) is a stranger to it. Genuine: each held-out image against the other
clean photos of its own person (cross-photo: never its own photo). The scale is a logistic fit of genuine
against stranger best cosines on log(1 - cos), both weighted equally, sun-glared images left out (the face
is gone); the default threshold is the lowest score on a 0.01 grid at which at most ``--fpir`` of the
strangers' best scores reach it (washed-out faces counted at half, as matching counts them). The model's
weights are untouched: the new file lists the old one's sha256 under ``embeds_like`` so that galleries
built with it stay valid.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from facecli.card import ScoreScale
from facecli.protocols import FACE_GONE_WEIGHT
from facecli.runtime import METADATA_KEY, load_model
from facecli.scan import resolve_identity_root, scan_identity_folder
from facecli.splits import holdout_parser, split_by_identity

CURVE_AT = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98, 0.99)


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


def main() -> None:
    ap = holdout_parser(__doc__)
    ap.add_argument("--model", type=Path, default=Path("models/identity.onnx"), help="identity model to update")
    ap.add_argument("--fpir", type=float, default=0.01, help="share of strangers the default threshold may accept")
    ap.add_argument("--dry-run", action="store_true", help="print the fit, write nothing")
    args = ap.parse_args()
    import onnx

    from facecli.options import RunOptions
    from facecli.recognise import embed_images

    root = resolve_identity_root(args.data / "Task_B", "train")
    items = scan_identity_folder(root)
    tr, va = split_by_identity(items, args.fraction, args.seed)
    model = load_model(args.model, "identity", "cpu")
    run = RunOptions()
    gal = [i for i in tr if not items[i].distortion]
    gv = embed_images(model, [items[i].path for i in gal], run).vectors
    emb = embed_images(model, [items[i].path for i in va], run)
    v, status = emb.vectors, np.asarray(emb.face_status)
    ident = np.array([items[i].identity for i in va])
    stem = np.array([items[i].source_stem for i in va])
    kind = np.array([items[i].distortion or "clean" for i in va])
    stranger = (v @ gv.T).max(1)
    clean = kind == "clean"
    sims = v @ v[clean].T
    same = ident[:, None] == ident[clean][None, :]
    own = same & (stem[:, None] == stem[clean][None, :])
    genuine = np.where(same & ~own, sims, -2.0).max(1)
    face = kind != "sunny"
    centre, slope = fit_log_logistic(genuine[face & (genuine > -2)], stranger[face])
    n_gen, n_str = int((face & (genuine > -2)).sum()), int(face.sum())
    scale = ScoreScale(round(centre, 5), round(slope, 3), fitted_on=(
        f"FACECOM Task B train, held-out people (person split seed {args.seed}, {args.fraction:.0%}: "
        f"{len(set(ident))} people); cross-photo genuine {n_gen} vs open-set strangers {n_str} "
        f"(gallery: {len(gal)} clean photos of {len({items[i].identity for i in gal})} training people); "
        "sunny left out"))
    best = np.asarray(scale(stranger), np.float64)
    best = np.where(status == "fallback", best * FACE_GONE_WEIGHT, best)
    curve = tuple((t, round(float((best >= t).mean()), 4)) for t in CURVE_AT)
    grid = np.round(np.arange(0.5, 1.0, 0.01), 2)
    threshold = float(next(t for t in grid if (best >= t).mean() <= args.fpir))
    print(json.dumps({"score_scale": scale.to_dict(), "threshold": threshold, "stranger_curve": curve,
                      "strangers": len(best)}, indent=1))
    if args.dry_run:
        return
    raw = args.model.read_bytes()
    proto = onnx.load_from_string(raw)
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    card = json.loads(entry.value)
    card.update(score_scale=scale.to_dict(), threshold=threshold, stranger_curve=[list(c) for c in curve],
                threshold_source=(f"open set on held-out people: at most {args.fpir:.2%} of strangers' best scores "
                                  f"reach it ({(best >= threshold).mean():.2%} of {len(best)})"))
    card["embeds_like"] = sorted(set(card.get("embeds_like") or []) | {hashlib.sha256(raw).hexdigest()})
    card.setdefault("preprocessing", {})["restore"] = "auto"
    entry.value = json.dumps(card)
    tmp = args.model.with_name(f".{args.model.name}.tmp")
    tmp.write_bytes(proto.SerializeToString())
    tmp.replace(args.model)
    print(f"wrote {args.model}")


if __name__ == "__main__":
    main()
