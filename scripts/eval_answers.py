"""Are facecli's identity *answers* right at the defaults? verify pairs, a small gallery and a large one.

    python scripts/eval_answers.py ../shared/data/FACECOM [--model models/identity.onnx] [--json out.json]

Data: FACECOM Task B train, split by person as training did (seed 0, 20% held out: 175 people). Everything is
run through the public API (``facecli.verify``, ``facecli.build_gallery``, ``facecli.match_probes``), so the
numbers are what a user gets at the defaults (and at ``--fpir 0.001`` and ``--threshold 0.8``):

1. verify: every pair of different clean photos of a held-out person with two or more photos (at most 15 pairs a
   person, so nobody dominates), against as many pairs of photos of two different held-out people (seeded).
2. small gallery: 12 held-out people with two or more photos (seeded draw, 5 draws), one photo each in the
   gallery; probes are their other clean photos (found with the right name?) and the clean photos of held-out
   people with one photo (strangers: accepted?). Found is reported as the mean of the draws' rates (each draw
   counts once), pooled over every probe of every draw (each photo counts once), and the draws' 5-95% range:
   one person with many photos and an unlike first photo sinks a whole draw, so tens of draws are needed.
3. large gallery: the training people's clean photos (702 people) plus clean[0::2] of the held-out people with
   two or more photos; known probes are clean[1::2] and their six non-sunny degraded copies (cross-photo: their
   own photo is never in the gallery), strangers are every clean and non-sunny image of held-out people with one
   photo. Reports DIR (right name and accepted) per kind, top-1, and the share of strangers accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from itertools import combinations
from pathlib import Path

import numpy as np

import facecli
from facecli.scan import resolve_identity_root, scan_identity_folder
from facecli.splits import split_by_identity

KINDS = ("clean", "blurred", "foggy", "lowlight", "noisy", "rainy", "resized")


def link_gallery(root: Path, photos: dict[str, list[Path]]) -> Path:
    """An identity folder of links: root/<identity>/<photo>."""
    for ident, paths in photos.items():
        (root / ident).mkdir(parents=True, exist_ok=True)
        for p in paths:
            os.symlink(p.resolve(), root / ident / p.name)
    return root


def verify_pairs(model, clean: dict[str, list[Path]], rng: np.random.Generator) -> dict:
    multi = {k: v for k, v in clean.items() if len(v) >= 2}
    same = []
    for _, v in sorted(multi.items()):
        pairs = list(combinations(v, 2))
        pick = rng.choice(len(pairs), min(15, len(pairs)), replace=False)
        same += [pairs[i] for i in sorted(pick)]
    people = sorted(clean)
    diff = []
    while len(diff) < len(same):
        a, b = rng.choice(len(people), 2, replace=False)
        diff.append((rng.choice(clean[people[a]]), rng.choice(clean[people[b]])))
    out = {}
    for name, pairs in (("same", same), ("different", diff)):
        verdicts = [facecli.verify(a, b, model) for a, b in pairs]
        out[name] = {"pairs": len(pairs), "accepted": float(np.mean([v.same for v in verdicts]))}
        out[name]["highest" if name == "different" else "lowest"] = float(
            (max if name == "different" else min)(v.similarity for v in verdicts))
    out["threshold"] = verdicts[0].threshold
    out["threshold_source"] = verdicts[0].threshold_source
    return out


def answers(run, truth: list[str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(right name and accepted, accepted, nearest is right) per probe; truth None marks a stranger."""
    t = run.table
    ident, nearest = t["identity"].to_numpy(), t["nearest"].to_numpy()
    accepted = t["accepted"].to_numpy(bool)
    truth_arr = np.array([x if x is not None else "\0" for x in truth], dtype=object)
    return (ident == truth_arr) & accepted, accepted, nearest == truth_arr


def small_gallery(model, clean: dict[str, list[Path]], draws: int, rng: np.random.Generator) -> dict:
    multi = sorted(k for k, v in clean.items() if len(v) >= 2)
    single = sorted(k for k, v in clean.items() if len(v) == 1)
    found, strangers_acc, n_known, n_str, n_right = [], [], 0, 0, 0
    for _ in range(draws):
        people = [multi[i] for i in rng.choice(len(multi), 12, replace=False)]
        with tempfile.TemporaryDirectory() as tmp:
            g = link_gallery(Path(tmp) / "ids", {p: [clean[p][0]] for p in people})
            built = facecli.build_gallery(g, model, out=Path(tmp) / "g")
            known = [(q, p) for p in people for q in clean[p][1:]]
            strangers = [clean[p][0] for p in single]
            run = facecli.match_probes([q for q, _ in known] + strangers, built.gallery, model)
            right, acc, _ = answers(run, [p for _, p in known] + [None] * len(strangers))
            found.append(right[: len(known)].mean())
            n_right += int(right[: len(known)].sum())
            strangers_acc.append(acc[len(known):].mean())
            n_known, n_str = n_known + len(known), n_str + len(strangers)
            decision = run.decision
    return {"draws": draws, "known_probes": n_known, "stranger_probes": n_str,
            "found_with_right_name": float(np.mean(found)), "found_with_right_name_pooled": n_right / max(n_known, 1),
            "found_5_95_percent_of_draws": [round(float(x), 3) for x in np.quantile(found, [0.05, 0.95])],
            "strangers_accepted": float(np.mean(strangers_acc)),
            "per_draw_found": [round(float(x), 3) for x in found], "threshold_source": decision.source}


def large_gallery(model, items, tr, va) -> dict:
    clean_va: dict[str, list] = {}
    for i in va:
        if not items[i].distortion:
            clean_va.setdefault(items[i].identity, []).append(items[i])
    multi = {k: sorted(v, key=lambda it: it.path.name) for k, v in clean_va.items() if len(v) >= 2}
    gal = {}
    for i in tr:
        if not items[i].distortion:
            gal.setdefault(items[i].identity, []).append(items[i].path)
    probe_stems = set()
    for k, v in multi.items():
        gal[k] = [it.path for it in v[0::2]]
        probe_stems |= {(k, it.path.stem) for it in v[1::2]}
    known = [items[i] for i in va if (items[i].identity, items[i].source_stem) in probe_stems
             and (items[i].distortion or "clean") in KINDS]
    strangers = [items[i] for i in va if items[i].identity not in multi and (items[i].distortion or "clean") in KINDS]
    probes = known + strangers
    truth = [it.identity for it in known] + [None] * len(strangers)
    kinds = np.array([it.distortion or "clean" for it in probes])
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        built = facecli.build_gallery(link_gallery(Path(tmp) / "ids", gal), model, out=Path(tmp) / "g")
        g = built.gallery
        out["gallery"] = {"identities": len(g.identities), "photos": len(g.rows)}
        for label, kw in (("default", {}), ("fpir 0.001", {"fpir": 0.001}), ("threshold 0.8", {"threshold": 0.8})):
            run = facecli.match_probes([it.path for it in probes], g, model, **kw)
            right, acc, top1 = answers(run, truth)
            k = len(known)
            per = {kind: {"dir": float(right[:k][kinds[:k] == kind].mean()),
                          "top1": float(top1[:k][kinds[:k] == kind].mean()),
                          "n": int((kinds[:k] == kind).sum())} for kind in KINDS}
            out[label] = {"threshold": run.threshold, "threshold_source": run.threshold_source,
                          "predicted_fpir": run.decision.fpir, "strangers": len(strangers),
                          "strangers_accepted": float(acc[k:].mean()),
                          "dir_clean": per["clean"]["dir"],
                          "dir_mean_six_kinds": float(np.mean([per[x]["dir"] for x in KINDS[1:]])),
                          "top1_mean_six_kinds": float(np.mean([per[x]["top1"] for x in KINDS[1:]])),
                          "per_kind": per}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="FACECOM folder (with Task_B/train)")
    ap.add_argument("--model", type=Path, default=None, help="identity model (default: the shipped one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    items = scan_identity_folder(resolve_identity_root(args.data / "Task_B", "train"))
    tr, va = split_by_identity(items, 0.2, args.seed)
    model = facecli.load_model(args.model, "identity", device="cpu")
    clean: dict[str, list[Path]] = {}
    for i in va:
        if not items[i].distortion:
            clean.setdefault(items[i].identity, []).append(items[i].path)
    clean = {k: sorted(v) for k, v in clean.items()}
    rng = np.random.default_rng(args.seed)
    res = {"data": f"FACECOM Task B train, held-out people (person split seed {args.seed}, 20%: {len(clean)} people)",
           "model": str(model.path), "verify": verify_pairs(model, clean, rng),
           "small_gallery": small_gallery(model, clean, args.draws, rng),
           "large_gallery": large_gallery(model, items, tr, va)}
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
