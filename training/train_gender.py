"""``facecli train gender``: FACECOM Task A folder -> run folder with the best gender classifier."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from facecli.training.augment import train_transform
from facecli.training.data import CropDataset, predict_batches
from facecli.training.loop import fit, supervised_step
from facecli.training.losses import BinaryFocalLoss, WeightedBCE
from facecli.training.models import create_model
from facecli.training.recipe import start_run, write_run
from facecli.training.skeleton import TrainOptions, load_split, make_loader, preprocessing_for, trainable, trainer_fit
from rich.console import Console
from sklearn.model_selection import train_test_split
from torch.utils.data import WeightedRandomSampler

from facecli.card import GENDER_LABELS, ModelCard
from facecli.errors import FacecliError
from facecli.metrics import gender_metrics, tune_threshold
from facecli.scan import resolve_gender_split, scan_gender_folder
from facecli.splits import split_by_person


@dataclass
class GenderTrainOptions(TrainOptions):
    """Options of ``facecli train gender`` (see the CLI help for each)."""

    epochs: int = 24
    batch_size: int = 32
    patience: int = 8
    balance: str = "loss"  # loss | sampler | both | none
    loss: str = "bce"  # bce | focal
    select: str = "f1"  # f1 | balanced_accuracy


def gender_split(opt: GenderTrainOptions) -> tuple[list[Path], list[int], list[Path], list[int], str, Path]:
    """Training and validation images with labels: DATA/val when given, else a hold-out grouped by person.
    Returns (train paths, train labels, val paths, val labels, how the split was made, train folder)."""
    train_dir = resolve_gender_split(opt.data, "train")
    if train_dir is None:
        raise FacecliError(f"{opt.data} must hold male/ and female/ (or train/male and train/female)")
    paths, labels = scan_gender_folder(train_dir)
    val_dir = resolve_gender_split(opt.data, "val")
    if val_dir is not None and val_dir != train_dir:
        val_paths, val_labels = scan_gender_folder(val_dir)
        split_note = f"given validation folder {val_dir}"
    else:
        if min(labels.count(0), labels.count(1)) < 2:
            raise FacecliError("need at least 2 images of each class to hold out a validation split")
        paths, val_paths, labels, val_labels = split_by_person(paths, labels, opt.val_fraction, opt.seed)
        split_note = (f"{opt.val_fraction:.0%} hold-out of {train_dir} grouped by person, stratified by label, "
                      f"seed {opt.seed}")
    if opt.limit and len(paths) > opt.limit:
        paths, _, labels, _ = train_test_split(paths, labels, train_size=opt.limit, stratify=labels,
                                               random_state=opt.seed)
    if min(labels.count(0), labels.count(1)) == 0:
        raise FacecliError("the training split needs images of both classes (male/ and female/)")
    return paths, labels, val_paths, val_labels, split_note, train_dir


def train_gender(opt: GenderTrainOptions, console: Console | None = None) -> dict[str, Any]:
    """Train, select the best epoch by validation F1 (female) or balanced accuracy, tune the threshold.

    Returns the run config written to ``opt.out/config.json`` (the model card and the run's record).
    """
    console = console or Console()
    paths, labels, val_paths, val_labels, split_note, train_dir = gender_split(opt)
    run = start_run(opt, "gender", console, preprocessing_for(opt))
    spec = run.spec
    console.print(f"{len(paths)} train / {len(val_paths)} val images ({split_note})")
    train_x, keep, val_x, vkeep, unreadable = load_split(run, paths, val_paths, console)
    train_y = [labels[i] for i in keep]
    val_y = np.asarray([val_labels[i] for i in vkeep])

    n_pos = int(sum(train_y))
    n_neg = len(train_y) - n_pos
    sampler = None
    if opt.balance in ("sampler", "both"):
        w = np.where(np.asarray(train_y) == 1, 0.5 / n_pos, 0.5 / n_neg)
        sampler = WeightedRandomSampler(torch.as_tensor(w, dtype=torch.double), len(train_y),
                                        generator=torch.Generator().manual_seed(opt.seed))
    pos_weight = n_neg / n_pos if opt.balance in ("loss", "both") else 1.0
    criterion = BinaryFocalLoss(alpha=n_neg / len(train_y) if opt.balance != "none" else 0.5) \
        if opt.loss == "focal" else WeightedBCE(pos_weight)
    loader = make_loader(CropDataset(train_x, train_y, spec, train_transform(spec.size, seed=opt.seed)), opt,
                         sampler=sampler)
    model = create_model("gender", opt.backbone, opt.pretrained)
    state: dict[str, Any] = {}

    def evaluate() -> dict[str, float]:
        logits = predict_batches(model, val_x, spec, run.device)
        p = 1 / (1 + np.exp(-logits))
        thr, _ = tune_threshold(val_y, p, opt.select)
        m = gender_metrics(val_y, p, thr)
        state[len(state)] = (p, thr)
        return {"val_f1": m["f1"], "val_balanced_accuracy": m["balanced_accuracy"], "val_accuracy": m["accuracy"],
                "val_recall_female": m["recall"], "val_roc_auc": m["roc_auc"], "threshold": thr}

    def describe(r: dict[str, Any]) -> str:
        return (f"val F1 {r['val_f1']:.4f}  bal.acc {r['val_balanced_accuracy']:.4f}  acc {r['val_accuracy']:.4f}  "
                f"recall(F) {r['val_recall_female']:.4f}  AUC {r['val_roc_auc']:.4f}  thr {r['threshold']:.3f}")

    how = trainer_fit(opt, f"val_{opt.select}", opt.epochs // 2, trainable(model, criterion), describe,
                      ["val_f1", "val_balanced_accuracy", "val_accuracy"])
    _, best_epoch = fit(model, supervised_step(model, criterion, run.device), loader, evaluate, opt, how, run.device,
                        console)
    best_p, best_thr = state[best_epoch - 1]
    final = gender_metrics(val_y, best_p, best_thr)
    card = ModelCard(task="gender", backbone=opt.backbone, preprocessing=spec, threshold=float(best_thr),
                     threshold_source=f"maximum {opt.select} on the validation split ({split_note})",
                     labels=GENDER_LABELS, metrics={"split": "validation", "protocol": split_note, **final})
    data = {"train_dir": str(train_dir), "train_images": len(train_y), "train_female": n_pos, "train_male": n_neg,
            "val_images": int(len(val_y)), "val_female": int(val_y.sum()), "unreadable": unreadable,
            "split": split_note}
    return write_run(opt, run, card, best_epoch=best_epoch, data=data, positive_label="female")
