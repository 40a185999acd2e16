"""Gender on held-out people, framed three ways and degraded seven ways, through facecli's classify path.

From FACECOM Task A's training photos, the people held out by the grouped split (the same function and seed
as training) are classified as:

- ``facecom``: the photo as it is (250x250 LFW-style frame, or a studio portrait);
- ``tight``: a square crop 1.1x the detected face box (a web face crop);
- ``padded``: the photo small in the middle of a grey canvas 3x its size;
- each of FACECOM's seven degradations (Task B's distorted copies of the same photos).

For each it prints N, accuracy, female recall, balanced accuracy and ROC AUC, and how often the label of a
photo changes across the three framings. The threshold is the model's own (tuned on validation data).

    python scripts/eval_gender_framing.py ../shared/data/FACECOM                  # shipped gender model
    python scripts/eval_gender_framing.py ../shared/data/FACECOM --model other.onnx
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from facecli.api import classify_images
from facecli.decode import read_image
from facecli.face.detectors import detect_faces
from facecli.metrics import gender_metrics
from facecli.runtime import load_model
from facecli.scan import resolve_identity_root, scan_identity_folder
from facecli.splits import gender_holdout, holdout_parser, person_of

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_detection import tight_crop  # noqa: E402  (the same tight framing as the detection benchmark)


def framings(img: np.ndarray) -> dict[str, np.ndarray]:
    """The three framings of one photo (tight only when a face is found)."""
    out = {"facecom": img}
    faces = detect_faces(img, largest_only=True)
    cut = tight_crop(img, faces[0].box) if faces else None
    if cut is not None:
        out["tight"] = cut[0]
    h, w = img.shape[:2]
    canvas = np.full((3 * h, 3 * w, 3), 128, np.uint8)
    canvas[h : 2 * h, w : 2 * w] = img
    out["padded"] = canvas
    return out


def main() -> None:
    ap = holdout_parser(__doc__)
    ap.add_argument("--model", type=Path, help="gender ONNX model (default: the shipped one)")
    args = ap.parse_args()

    va_p, va_y = gender_holdout(args.data, args.fraction, args.seed)
    label_of = {p.stem: y for p, y in zip(va_p, va_y, strict=True)}
    model = load_model(args.model, "gender")
    sets: dict[str, list[tuple[Path, int, str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for p, y in zip(va_p, va_y, strict=True):
            for name, img in framings(read_image(p)).items():
                dst = Path(tmp) / name / f"{p.stem}.png"
                dst.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(dst), img)
                sets.setdefault(name, []).append((dst, y, p.stem))
        root = resolve_identity_root(args.data / "Task_B", "train")
        for it in scan_identity_folder(root):
            if it.distortion and it.source_stem in label_of:
                sets.setdefault(it.distortion, []).append((it.path, label_of[it.source_stem], it.source_stem))
        labels_by: dict[str, dict[str, str]] = {}
        rows = []
        for name, items in sets.items():
            df = classify_images([p for p, _, _ in items], model).table
            first = df[df["face"].astype(str).isin(["0", ""])].reset_index(drop=True)  # the largest face
            y = np.array([lab for _, lab, _ in items])
            p_f = first["p_female"].astype(float).to_numpy()
            no_label = np.isnan(p_f)
            pred_p = np.where(no_label, 1.0 - y, p_f)  # no face, no label: counted as a wrong answer
            m = gender_metrics(y, pred_p, float(model.meta["threshold"]))
            rows.append((name, len(items), m, int(no_label.sum())))
            labels_by[name] = {stem: lab for (_, _, stem), lab in zip(items, first["label"], strict=True)}
    people = len({person_of(p) for p in va_p})
    print(f"Held-out people of FACECOM Task A train (grouped split, seed {args.seed}): {people} people, {len(va_p)} "
          f"photos ({sum(va_y)} female). Model {model.path}, threshold {float(model.meta['threshold']):.4f} "
          "(tuned on validation data). An image with no face found counts as an error.\n")
    print("| images | N | accuracy | female recall | balanced accuracy | ROC AUC | no face |")
    print("|---|---|---|---|---|---|---|")
    order = ["facecom", "tight", "padded", "blurred", "foggy", "lowlight", "noisy", "rainy", "resized", "sunny"]
    for name, n, m, nf in sorted(rows, key=lambda r: order.index(r[0]) if r[0] in order else 99):
        print(f"| {name} | {n} | {m['accuracy']:.4f} | {m['recall']:.4f} | {m['balanced_accuracy']:.4f} | "
              f"{m['roc_auc']:.4f} | {nf} |")
    common = set(labels_by["facecom"]) & set(labels_by.get("tight", {})) & set(labels_by["padded"])
    changed = sum(len({labels_by[f][s] for f in ("facecom", "tight", "padded")}) > 1 for s in common)
    print(f"\nLabel changes across the three framings: {changed} of {len(common)} photos "
          f"({changed / max(1, len(common)):.3%}).")


if __name__ == "__main__":
    main()
