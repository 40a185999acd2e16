"""Gender from a face encoder: a linear head on the (frozen) face embedding shared with the identity model.

The face-pretrained embedder already separates faces by the traits that tell women from men; a balanced
logistic regression on its L2-normalised 128-d embedding is the whole classifier. Inputs are aligned face
chips (MTCNN + the model's template), so the framing of the photo no longer matters.

Data: FACECOM Task A's training photos plus Task B's seven distorted copies of the same photos (same file
names; their gender is Task A's). The hold-out is grouped by person (``Cameron_Diaz_0001`` and ``_0002``
never straddle it) and stratified by label; the head is fitted on the training people, the threshold is
tuned on the held-out people (maximum balanced accuracy, halfway between two scores).

    python -m facecli.training.gender_head ../shared/data/FACECOM \\
        --backbone-weights runs/identity_distill/model.safetensors \\
        --out runs/gender_face
    facecli export gender runs/gender_face --out gender.onnx
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from facecli.metrics import gender_metrics, tune_threshold
from facecli.scan import GENDER_LABELS, resolve_gender_split, resolve_identity_root, scan_gender_folder, scan_identity_folder
from facecli.training.data import load_crops, predict_batches
from facecli.training.distill_identity import dlib_preprocessing
from facecli.training.models import create_model
from facecli.training.run_dir import WEIGHTS, save_weights, write_config
from facecli.training.train_gender import person_of, split_by_person


def with_distorted_copies(paths: list[Path], labels: list[int], task_b: Path | None) -> tuple[list[Path], list[int]]:
    """``paths`` plus Task B's distorted copies of the same photos (matched by file name), labelled alike."""
    if task_b is None:
        return list(paths), list(labels)
    by_stem = {p.stem: y for p, y in zip(paths, labels, strict=True)}
    extra = [(it.path, by_stem[it.source_stem]) for it in scan_identity_folder(task_b)
             if it.distortion and it.source_stem in by_stem]
    return list(paths) + [p for p, _ in extra], list(labels) + [y for _, y in extra]


def fit_gender_head(data: Path, backbone_weights: str, out: Path, *, val_fraction: float = 0.2, seed: int = 0,
                    c: float = 10.0, console: Console | None = None) -> dict[str, Any]:
    """Fit the head, tune the threshold on held-out people, write a run folder (see the module docstring)."""
    from sklearn.linear_model import LogisticRegression

    console = console or Console(stderr=True)
    t0 = time.time()
    paths, labels = scan_gender_folder(resolve_gender_split(data / "Task_A", "train"))
    tr_p, va_p, tr_y, va_y = split_by_person(paths, labels, val_fraction, seed)
    try:
        task_b = resolve_identity_root(data / "Task_B", "train")
    except Exception:
        task_b = None
    tr_p, tr_y = with_distorted_copies(tr_p, tr_y, task_b)
    va_all, va_all_y = with_distorted_copies(va_p, va_y, task_b)
    spec = dlib_preprocessing()
    model = create_model("gender", "dlib_resnet", backbone_weights).eval()
    console.print(f"[bold]gender head[/] {len(tr_p)} train / {len(va_all)} held-out images "
                  f"({len({person_of(p) for p in va_p})} held-out people)")

    def embed(ps: list[Path]) -> tuple[np.ndarray, list[int]]:
        chips, kept, _ = load_crops(ps, spec)
        e = predict_batches(model.backbone, chips, spec, torch.device("cpu"))
        return e / np.linalg.norm(e, axis=1, keepdims=True), kept

    x_tr, k_tr = embed(tr_p)
    y_tr = np.asarray(tr_y)[k_tr]
    x_va, k_va = embed(va_all)
    y_va = np.asarray(va_all_y)[k_va]
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x_tr, y_tr)
    model.head.weight.data = torch.from_numpy(clf.coef_.astype(np.float32))
    model.head.bias.data = torch.from_numpy(clf.intercept_.astype(np.float32))
    p_va = clf.predict_proba(x_va)[:, 1]
    thr, _ = tune_threshold(y_va, p_va, "balanced_accuracy")
    clean = np.asarray([i < len(va_p) for i in k_va])
    m_all = gender_metrics(y_va, p_va, thr)
    m_clean = gender_metrics(y_va[clean], p_va[clean], thr)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(model, out / WEIGHTS)
    config = {
        "task": "gender",
        "backbone": "dlib_resnet",
        "model_kwargs": {},
        "preprocessing": spec.to_dict(),
        "labels": list(GENDER_LABELS),
        "threshold": float(thr),
        "threshold_rule": "maximum balanced accuracy on the held-out people (clean and distorted), halfway "
                          "between two scores",
        "weights": WEIGHTS,
        "metrics": {"split": "validation", "protocol": f"{val_fraction:.0%} of people held out (grouped, seed {seed})",
                    **{f"val_{k}": v for k, v in m_clean.items() if not isinstance(v, dict | list)},
                    **{f"val_with_distorted_{k}": v for k, v in m_all.items() if not isinstance(v, dict | list)}},
        "data": {"train_images": len(k_tr), "val_images": len(k_va), "val_clean_images": int(clean.sum()),
                 "val_people": len({person_of(p) for p in va_p}), "backbone_weights": str(backbone_weights)},
        "recipe": "balanced logistic regression on the frozen face embedding",
        "train_time_s": round(time.time() - t0, 1),
    }
    write_config(out, config)
    console.print(f"held-out people, clean photos: accuracy {m_clean['accuracy']:.4f}, female recall "
                  f"{m_clean['recall']:.4f}, balanced accuracy {m_clean['balanced_accuracy']:.4f} "
                  f"(threshold {thr:.4f}); with distorted copies: accuracy {m_all['accuracy']:.4f}")
    return config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="FACECOM folder holding Task_A/ (and Task_B/ for distorted copies)")
    ap.add_argument("--backbone-weights", required=True, help="an identity run's model.safetensors (dlib_resnet)")
    ap.add_argument("--out", type=Path, default=Path("runs/gender_face"))
    ap.add_argument("--val-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--c", type=float, default=10.0, help="inverse L2 strength of the logistic regression")
    args = ap.parse_args()
    fit_gender_head(args.data, args.backbone_weights, args.out, val_fraction=args.val_fraction, seed=args.seed,
                    c=args.c)


if __name__ == "__main__":
    main()
