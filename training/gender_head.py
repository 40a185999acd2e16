"""Gender from a face encoder: a linear head on the (frozen) face embedding shared with the identity model.

The face-pretrained embedder already separates faces by the traits that tell women from men; a balanced
logistic regression on its L2-normalised 128-d embedding is the whole classifier. Inputs are aligned face
chips (MTCNN + the model's template), so the framing of the photo no longer matters.

Data: FACECOM Task A's training photos plus Task B's seven distorted copies of the same photos (same file
names; their gender is Task A's). The hold-out is grouped by person (``Cameron_Diaz_0001`` and ``_0002``
never straddle it) and stratified by label; the head is fitted on the training people, the threshold is
tuned on the held-out people (maximum balanced accuracy, halfway between two scores). No epochs: the run
folder (weights, config.json with the model card) is written through the same writer as the trainers'.

    python -m facecli.training.gender_head ../shared/data/FACECOM \\
        --backbone-weights runs/identity_distill/model.safetensors \\
        --out runs/gender_face
    facecli export gender runs/gender_face --out gender.onnx
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from facecli.training.data import load_crops, predict_batches
from facecli.training.models import backbone_preprocessing, create_model
from facecli.training.recipe import RecipeOptions, Run, recipe_main, start_run, write_run
from facecli.training.run_dir import WEIGHTS, save_weights
from rich.console import Console

from facecli.card import GENDER_LABELS, ModelCard
from facecli.metrics import gender_metrics, tune_threshold
from facecli.scan import resolve_gender_split, resolve_identity_root, scan_gender_folder, scan_identity_folder
from facecli.splits import person_of, split_by_person

BACKBONE = "dlib_resnet"


@dataclass
class GenderHeadOptions(RecipeOptions):
    """Options of the gender-head recipe (see ``--help``)."""

    data: Path = field(metadata={"help": "FACECOM folder holding Task_A/ (and Task_B/ for distorted copies)"})
    out: Path = Path("runs/gender_face")
    backbone_weights: str = field(default="", metadata={"help": "an identity run's model.safetensors (dlib_resnet)",
                                                        "required": True})
    c: float = field(default=10.0, metadata={"help": "inverse L2 strength of the logistic regression"})


def with_distorted_copies(paths: list[Path], labels: list[int], task_b: Path | None) -> tuple[list[Path], list[int]]:
    """``paths`` plus Task B's distorted copies of the same photos (matched by file name), labelled alike."""
    if task_b is None:
        return list(paths), list(labels)
    by_stem = {p.stem: y for p, y in zip(paths, labels, strict=True)}
    extra = [(it.path, by_stem[it.source_stem]) for it in scan_identity_folder(task_b)
             if it.distortion and it.source_stem in by_stem]
    return list(paths) + [p for p, _ in extra], list(labels) + [y for _, y in extra]


def head_split(opt: GenderHeadOptions) -> tuple[list[Path], list[int], list[Path], list[int], int, int]:
    """Task A's photos split by person, each side with Task B's distorted copies. Returns (train paths, labels,
    held-out paths, labels, held-out clean photos (listed first), held-out people)."""
    paths, labels = scan_gender_folder(resolve_gender_split(opt.data / "Task_A", "train"))
    tr_p, va_p, tr_y, va_y = split_by_person(paths, labels, opt.val_fraction, opt.seed)
    try:
        task_b = resolve_identity_root(opt.data / "Task_B", "train")
    except Exception:
        task_b = None
    tr_p, tr_y = with_distorted_copies(tr_p, tr_y, task_b)
    va_all, va_all_y = with_distorted_copies(va_p, va_y, task_b)
    return tr_p, tr_y, va_all, va_all_y, len(va_p), len({person_of(p) for p in va_p})


def embed(model: torch.nn.Module, run: Run, paths: list[Path], labels: list[int]) -> tuple[np.ndarray, np.ndarray,
                                                                                          list[int]]:
    """Unit-length embeddings of the readable images, their labels and their indices in ``paths``."""
    chips, kept, _ = load_crops(paths, run.spec)
    e = predict_batches(model.backbone, chips, run.spec, run.device)
    return e / np.linalg.norm(e, axis=1, keepdims=True), np.asarray(labels)[kept], kept


def flat(prefix: str, m: dict[str, Any]) -> dict[str, Any]:
    """The scalar figures of a metrics dict, renamed ``prefix + name``."""
    return {f"{prefix}{k}": v for k, v in m.items() if not isinstance(v, dict | list)}


def fit_gender_head(opt: GenderHeadOptions, console: Console | None = None) -> dict[str, Any]:
    """Fit the head, tune the threshold on held-out people, write a run folder (see the module docstring)."""
    from sklearn.linear_model import LogisticRegression

    console = console or Console(stderr=True)
    tr_p, tr_y, va_p, va_y, n_clean, n_people = head_split(opt)
    run = start_run(opt, "gender head", console, backbone_preprocessing(BACKBONE))
    model = create_model("gender", BACKBONE, opt.backbone_weights).to(run.device).eval()
    console.print(f"{len(tr_p)} train / {len(va_p)} held-out images ({n_people} held-out people)")
    x_tr, y_tr, k_tr = embed(model, run, tr_p, tr_y)
    x_va, y_va, k_va = embed(model, run, va_p, va_y)
    clf = LogisticRegression(C=opt.c, class_weight="balanced", max_iter=5000).fit(x_tr, y_tr)
    model.head.weight.data = torch.from_numpy(clf.coef_.astype(np.float32)).to(run.device)
    model.head.bias.data = torch.from_numpy(clf.intercept_.astype(np.float32)).to(run.device)
    p_va = clf.predict_proba(x_va)[:, 1]
    thr, _ = tune_threshold(y_va, p_va, "balanced_accuracy")
    clean = np.asarray([i < n_clean for i in k_va])
    m_all, m_clean = gender_metrics(y_va, p_va, thr), gender_metrics(y_va[clean], p_va[clean], thr)
    save_weights(model, opt.out / WEIGHTS)
    card = ModelCard(task="gender", backbone=BACKBONE, preprocessing=run.spec, threshold=float(thr),
                     threshold_source="maximum balanced accuracy on the held-out people (clean and distorted), "
                                      "halfway between two scores",
                     labels=GENDER_LABELS,
                     metrics={"split": "validation", "protocol": f"{opt.val_fraction:.0%} of people held out "
                                                                 f"(grouped, seed {opt.seed})",
                              **flat("val_", m_clean), **flat("val_with_distorted_", m_all)})
    data = {"train_images": len(k_tr), "val_images": len(k_va), "val_clean_images": int(clean.sum()),
            "val_people": n_people, "backbone_weights": str(opt.backbone_weights)}
    config = write_run(opt, run, card, best_epoch=None, data=data, positive_label="female",
                       recipe="balanced logistic regression on the frozen face embedding")
    console.print(f"held-out people, clean photos: accuracy {m_clean['accuracy']:.4f}, female recall "
                  f"{m_clean['recall']:.4f}, balanced accuracy {m_clean['balanced_accuracy']:.4f} "
                  f"(threshold {thr:.4f}); with distorted copies: accuracy {m_all['accuracy']:.4f}")
    return config


def main() -> None:
    recipe_main(GenderHeadOptions, fit_gender_head, __doc__)


if __name__ == "__main__":
    main()
