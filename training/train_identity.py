"""``facecli train identity``: FACECOM Task B folder -> run folder with the best face embedder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from facecli.training.augment import train_transform
from facecli.training.data import CropDataset, predict_batches
from facecli.training.loop import fit, supervised_step
from facecli.training.losses import ArcFaceLoss, BatchHardTripletLoss
from facecli.training.models import create_model
from facecli.training.recipe import FitOptions, Run, start_run, write_run
from facecli.training.run_dir import WEIGHTS
from facecli.training.samplers import IdentitySampler
from facecli.training.skeleton import TrainOptions, load_split, make_loader, preprocessing_for, trainable, trainer_fit
from rich.console import Console

from facecli.card import ModelCard
from facecli.errors import FacecliError
from facecli.protocols import run_protocol
from facecli.scan import IdentityImage, resolve_identity_root, scan_identity_folder
from facecli.splits import split_by_identity


@dataclass
class IdentityTrainOptions(TrainOptions):
    """Options of ``facecli train identity`` (see the CLI help for each)."""

    embedding_dim: int = 512
    loss: str = "arcface"  # arcface | triplet
    margin: float = 0.3
    scale: float = 32.0
    epochs: int = 20
    batch_size: int = 128
    identities_per_batch: int = 16
    patience: int = 6
    degrade_p: float = 0.5
    init: Path | None = None  # a previous identity run (folder or weights file) to fine-tune from
    strong_glare: bool = False  # add SunGlare (FACECOM-like wash-out) to the sun-glare degradations


def tuned_threshold(items: list[IdentityImage], emb: np.ndarray, far: float = 1e-3) -> float:
    """The match threshold at false accept rate ``far`` on the FACECOM-protocol pairs of ``items``."""
    from facecli.calibrate import choose_threshold

    res = run_protocol(items, emb, np.ones(len(items), bool), "facecom", threshold=0.5)
    if res is None or not len(res[0].impostor):
        return 0.5
    return float(choose_threshold(res[0].genuine, res[0].impostor, "far", far))


def validation_scores(items: list[IdentityImage], emb: np.ndarray) -> dict[str, float]:
    """FACECOM protocol (clean gallery, distorted probes) and cross-photo protocol on held-out identities."""
    ok = np.ones(len(items), bool)
    out: dict[str, float] = {}
    for name in ("facecom", "cross_photo"):
        res = run_protocol(items, emb, ok, name, threshold=0.5)
        if res is None:
            continue
        m = res[0].metrics
        out[f"val_{name}_top1"] = m["top1_accuracy"]
        out[f"val_{name}_macro_f1"] = m["macro_f1"]
        out[f"val_{name}_tar_far1e-3"] = m["verification_tar_at_far_1e-3"]
        out[f"val_{name}_probes"] = m["probes"]
    parts = [out[k] for k in ("val_facecom_top1", "val_facecom_macro_f1", "val_cross_photo_top1") if k in out]
    out["val_score"] = float(np.mean(parts)) if parts else float("nan")
    return out


def init_from_run(path: Path, backbone: str, embedding_dim: int) -> torch.nn.Module:
    """An embedder with every weight (backbone, projection, BatchNorm) of a previous identity run.

    ``path`` is a run folder or its ``model.safetensors``; the backbone and embedding size must match.
    """
    from facecli.training.models import read_state_dict

    path = Path(path)
    weights = path / WEIGHTS if path.is_dir() else path
    if not weights.is_file():
        raise FacecliError(f"--init: {weights} not found (expected a facecli identity run folder)")
    model = create_model("identity", backbone, "none", embedding_dim=embedding_dim)
    sd = read_state_dict(weights)
    own = model.state_dict()
    bad = sorted(k for k in own if k not in sd or sd[k].shape != own[k].shape)
    if bad:
        raise FacecliError(f"--init: {weights} does not fit a {backbone} embedder with {embedding_dim}-d output "
                           f"({len(bad)} tensors missing or of another shape, e.g. {bad[0]})")
    model.load_state_dict({k: sd[k] for k in own})
    return model


def class_means(emb: np.ndarray, labels: list[int], n_classes: int) -> np.ndarray:
    """ArcFace centres that start where the data already is: each class's gallery template (the
    re-normalised mean of its normalised embeddings); a class without images gets a zero row."""
    from facecli.gallery import build_templates

    names, templates, _ = build_templates(emb, labels)
    centres = np.zeros((n_classes, emb.shape[1]), np.float32)
    centres[np.asarray(names, dtype=np.int64)] = templates
    return centres


def identity_split(opt: FitOptions, use_val_folder: bool = True) -> tuple[list[IdentityImage], list[IdentityImage], str,
                                                                          Path]:
    """Training and validation images: DATA/val when given (and ``use_val_folder``), else an identity-disjoint
    hold-out of the training identities. Returns (train items, val items, how the split was made, train root)."""
    train_root = resolve_identity_root(opt.data, "train")
    if train_root is None:
        raise FacecliError(f"{opt.data} is not a Task B folder (expected DATA/train/<identity>/ or <identity>/ folders)")
    items = scan_identity_folder(train_root)
    val_root = resolve_identity_root(opt.data, "val") if use_val_folder else None
    if val_root is not None and val_root != train_root:
        tr_items, va_items = items, scan_identity_folder(val_root)
        split_note = f"given validation folder {val_root}"
    else:
        tr, va = split_by_identity(items, opt.val_fraction, opt.seed)
        tr_items, va_items = [items[i] for i in tr], [items[i] for i in va]
        split_note = f"identity-disjoint {opt.val_fraction:.0%} hold-out of {train_root}, seed {opt.seed}"
    if opt.limit:
        keep = set(sorted({it.identity for it in tr_items})[: opt.limit])
        tr_items = [it for it in tr_items if it.identity in keep]
    if len({it.identity for it in tr_items}) < 2:
        raise FacecliError("need at least 2 training identities")
    return tr_items, va_items, split_note, train_root


def loss_and_loader(opt: IdentityTrainOptions, ds: CropDataset, train_y: list[int], n_classes: int):
    """ArcFace over shuffled batches, or batch-hard triplets over identities x images batches."""
    if opt.loss == "triplet":
        k = max(2, opt.batch_size // opt.identities_per_batch)
        sampler = IdentitySampler(train_y, opt.identities_per_batch, k, seed=opt.seed)
        return BatchHardTripletLoss(opt.margin), make_loader(ds, opt, batch_sampler=sampler)
    return ArcFaceLoss(opt.embedding_dim, n_classes, scale=opt.scale, margin=opt.margin), make_loader(ds, opt)


def starting_model(opt: IdentityTrainOptions, run: Run, criterion: torch.nn.Module, train_x: np.ndarray,
                   train_y: list[int], n_classes: int, console: Console) -> torch.nn.Module:
    """A fresh embedder, or with ``--init`` a previous run's, whose embeddings' class means start ArcFace."""
    if opt.init is None:
        return create_model("identity", opt.backbone, opt.pretrained, embedding_dim=opt.embedding_dim)
    model = init_from_run(opt.init, opt.backbone, opt.embedding_dim).to(run.device)
    if isinstance(criterion, ArcFaceLoss):
        centres = class_means(predict_batches(model, train_x, run.spec, run.device), train_y, n_classes)
        criterion.weight.data.copy_(torch.from_numpy(centres))
    console.print(f"fine-tuning from {opt.init}")
    return model


def describe_identity(r: dict[str, Any]) -> str:
    """An epoch's validation figures, for the console."""
    return (f"FACECOM top-1 {r.get('val_facecom_top1', 0):.4f}  F1 {r.get('val_facecom_macro_f1', 0):.4f}  "
            f"cross-photo top-1 {r.get('val_cross_photo_top1', float('nan')):.4f}")


def train_identity(opt: IdentityTrainOptions, console: Console | None = None) -> dict[str, Any]:
    """Train an embedder with ArcFace (default) or batch-hard triplet loss on clean + distorted images.

    The best epoch is the one with the highest ``val_score``: the mean of FACECOM top-1, FACECOM macro-F1
    and cross-photo top-1 on the held-out identities. Returns the run config (model card and run record).
    """
    console = console or Console()
    tr_items, va_items, split_note, train_root = identity_split(opt)
    classes = sorted({it.identity for it in tr_items})
    run = start_run(opt, "identity", console, preprocessing_for(opt))
    spec = run.spec
    console.print(f"{len(classes)} train identities ({len(tr_items)} images) / "
                  f"{len({it.identity for it in va_items})} val identities ({len(va_items)} images) ({split_note})")
    train_x, keep_i, val_x, vkeep, unreadable = load_split(run, [it.path for it in tr_items],
                                                           [it.path for it in va_items], console)
    cls_of = {c: i for i, c in enumerate(classes)}
    train_y = [cls_of[tr_items[i].identity] for i in keep_i]
    va_items = [va_items[i] for i in vkeep]
    ds = CropDataset(train_x, train_y, spec, train_transform(spec.size, degrade_p=opt.degrade_p,
                                                             strong_glare=opt.strong_glare, seed=opt.seed))
    criterion, loader = loss_and_loader(opt, ds, train_y, len(classes))
    model = starting_model(opt, run, criterion, train_x, train_y, len(classes), console)
    embs: list[np.ndarray] = []

    def evaluate() -> dict[str, float]:
        embs.append(predict_batches(model, val_x, spec, run.device))
        return validation_scores(va_items, embs[-1])

    how = trainer_fit(opt, "val_score", opt.epochs, trainable(model, criterion), describe_identity,
                      ["val_facecom_top1", "val_facecom_macro_f1", "val_cross_photo_top1"])
    history, best_epoch = fit(model, supervised_step(model, criterion, run.device), loader, evaluate, opt, how,
                              run.device, console)
    best = history[best_epoch - 1]
    card = ModelCard(task="identity", backbone=opt.backbone, preprocessing=spec,
                     threshold=tuned_threshold(va_items, embs[best_epoch - 1]),
                     threshold_source="false accept rate 1e-3 on the validation FACECOM-protocol pairs",
                     embedding_dim=opt.embedding_dim,
                     metrics={"split": "validation", "protocol": split_note,
                              **{k: v for k, v in best.items() if k.startswith("val_")}})
    data = {"train_root": str(train_root), "train_identities": len(classes), "train_images": len(train_y),
            "val_identities": len({it.identity for it in va_items}), "val_images": len(va_items),
            "unreadable": unreadable, "split": split_note}
    return write_run(opt, run, card, best_epoch=best_epoch, data=data,
                     model_kwargs={"embedding_dim": opt.embedding_dim})
