"""``facecli train gender``: FACECOM Task A folder -> run folder with the best gender classifier."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, WeightedRandomSampler

from facecli.errors import FacecliError
from facecli.metrics import gender_metrics, tune_threshold
from facecli.preprocess import Preprocessing, margin_for_crop
from facecli.scan import GENDER_LABELS, resolve_gender_split, scan_gender_folder
from facecli.training.augment import train_transform
from facecli.training.data import CropDataset, load_crops, predict_batches
from facecli.training.loop import FitConfig, fit, pick_device, seed_everything, worker_init
from facecli.training.losses import BinaryFocalLoss, WeightedBCE
from facecli.training.models import DEFAULT_BACKBONE, backbone_norm, create_model
from facecli.training.run_dir import WEIGHTS, write_config, write_history


def person_of(path: Path) -> str:
    """The person a gender image shows: its name without the ``_NNNN`` suffix (``Cameron_Diaz_0003`` ->
    ``Cameron_Diaz``); a name without such a suffix (``012_frontal``) is its own person."""
    stem = path.stem
    base, _, num = stem.rpartition("_")
    return base if base and num.isdigit() and len(num) == 4 else stem


def split_by_person(paths: list[Path], labels: list[int], fraction: float, seed: int):
    """Seeded hold-out grouped by person and stratified by label within that: no person is on both sides.

    Returns (train paths, val paths, train labels, val labels). People are shuffled (seeded) within each
    label and the first ones are held out until ``fraction`` of that label's images is reached.
    """
    rng = np.random.default_rng(seed)
    person_label: dict[str, int] = {}
    count: dict[str, int] = {}
    for p, y in zip(paths, labels, strict=True):
        person = person_of(p)
        person_label.setdefault(person, y)  # a person filed under both labels follows their first image
        count[person] = count.get(person, 0) + 1
    val_people: set[str] = set()
    for y in (0, 1):
        people = sorted(p for p, lab in person_label.items() if lab == y)
        want = fraction * sum(count[p] for p in people)
        got = 0
        for i in rng.permutation(len(people)):
            if got >= want:
                break
            val_people.add(people[i])
            got += count[people[i]]
    tr = [i for i, p in enumerate(paths) if person_of(p) not in val_people]
    va = [i for i, p in enumerate(paths) if person_of(p) in val_people]
    if not tr or not va:
        raise FacecliError("too few people to hold out a validation split grouped by person")
    return ([paths[i] for i in tr], [paths[i] for i in va], [labels[i] for i in tr], [labels[i] for i in va])


@dataclass
class GenderTrainOptions:
    """Options of ``facecli train gender`` (see the CLI help for each)."""

    data: Path
    out: Path
    backbone: str = DEFAULT_BACKBONE
    pretrained: str = "auto"
    size: int = 112
    crop: float = 0.8
    detect: str = "none"
    align: str = "none"  # landmark template (facecli.align.TEMPLATES) or none; implies detect=auto
    zoom: float = 1.0  # with align: > 1 shows more context around the face
    epochs: int = 24
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    patience: int = 8
    val_fraction: float = 0.2
    seed: int = 0
    balance: str = "loss"  # loss | sampler | both | none
    loss: str = "bce"  # bce | focal
    select: str = "f1"  # f1 | balanced_accuracy
    workers: int = 2
    device: str = "auto"
    limit: int = 0  # use at most this many training images (quick trials); 0 = all


def train_gender(opt: GenderTrainOptions, console: Console | None = None) -> dict[str, Any]:
    """Train, select the best epoch by validation F1 (female) or balanced accuracy, tune the threshold.

    Returns the run config written to ``opt.out/config.json``.
    """
    console = console or Console()
    seed_everything(opt.seed)
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

    mean, std = backbone_norm(opt.backbone)
    spec = Preprocessing(size=opt.size, mean=mean, std=std, crop=opt.crop,
                         detect="auto" if opt.align != "none" else opt.detect,
                         face_margin=margin_for_crop(opt.crop), template=opt.align, zoom=opt.zoom)
    opt.out.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]gender[/] {len(paths)} train / {len(val_paths)} val images ({split_note})")

    t0 = time.time()
    train_x, keep, fails = load_crops(paths, spec)
    train_y = [labels[i] for i in keep]
    val_x, vkeep, vfails = load_crops(val_paths, spec)
    val_y = np.asarray([val_labels[i] for i in vkeep])
    console.print(f"decoded and cropped in {time.time() - t0:.1f}s; unreadable: {len(fails) + len(vfails)}")

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

    ds = CropDataset(train_x, train_y, spec, train_transform(opt.size, seed=opt.seed))
    loader = DataLoader(ds, batch_size=opt.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=opt.workers, drop_last=len(ds) > opt.batch_size, worker_init_fn=worker_init,
                        persistent_workers=opt.workers > 0, generator=torch.Generator().manual_seed(opt.seed))
    model = create_model("gender", opt.backbone, opt.pretrained)
    device = pick_device(opt.device)
    state: dict[str, Any] = {}

    def evaluate() -> dict[str, float]:
        logits = predict_batches(model, val_x, spec, device)
        p = 1 / (1 + np.exp(-logits))
        thr, _ = tune_threshold(val_y, p, opt.select)
        m = gender_metrics(val_y, p, thr)
        state["p"], state["thr"] = p, thr
        return {"val_f1": m["f1"], "val_balanced_accuracy": m["balanced_accuracy"], "val_accuracy": m["accuracy"],
                "val_recall_female": m["recall"], "val_roc_auc": m["roc_auc"], "threshold": thr}

    table = Table("epoch", "loss", "val F1", "bal. acc", "acc", "recall F", "AUC", "thr", "img/s", "best",
                  title="gender training")
    history: list[dict[str, Any]] = []
    best_state: dict[str, Any] = {}

    def on_epoch(epoch: int, r: dict[str, Any]) -> None:
        history.append(r)
        if r["best"]:
            best_state.update(p=state["p"], thr=state["thr"])
        console.print(f"epoch {epoch}: loss {r['train_loss']:.4f}  val F1 {r['val_f1']:.4f}  "
                      f"bal.acc {r['val_balanced_accuracy']:.4f}  acc {r['val_accuracy']:.4f}  "
                      f"recall(F) {r['val_recall_female']:.4f}  thr {r['threshold']:.3f}"
                      f"  {'*' if r['best'] else ''}")
        table.add_row(str(epoch), f"{r['train_loss']:.4f}", f"{r['val_f1']:.4f}", f"{r['val_balanced_accuracy']:.4f}",
                      f"{r['val_accuracy']:.4f}", f"{r['val_recall_female']:.4f}", f"{r['val_roc_auc']:.4f}",
                      f"{r['threshold']:.3f}", f"{r['train_images_per_s']:.0f}", "*" if r["best"] else "")
        write_history(opt.out, history, ["val_f1", "val_balanced_accuracy", "val_accuracy"])

    fc = FitConfig(epochs=opt.epochs, lr=opt.lr, weight_decay=opt.weight_decay, patience=opt.patience,
                   restart_epochs=max(1, opt.epochs // 2), seed=opt.seed)
    _, best_epoch = fit(model, criterion, loader, evaluate, f"val_{opt.select}", fc, opt.out,
                        device, console, on_epoch)
    console.print(table)
    final = gender_metrics(val_y, best_state["p"], best_state["thr"])
    config = {
        "task": "gender",
        "backbone": opt.backbone,
        "model_kwargs": {},
        "preprocessing": spec.to_dict(),
        "labels": list(GENDER_LABELS),
        "positive_label": "female",
        "threshold": float(best_state["thr"]),
        "best_epoch": best_epoch,
        "weights": WEIGHTS,
        "metrics": {"split": "validation", "protocol": split_note, **final},
        "data": {"train_dir": str(train_dir), "train_images": len(train_y), "train_female": n_pos,
                 "train_male": n_neg, "val_images": int(len(val_y)), "val_female": int(val_y.sum()),
                 "unreadable": len(fails) + len(vfails), "split": split_note},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opt).items()},
        "train_time_s": round(time.time() - t0, 1),
    }
    write_config(opt.out, config)
    return config
