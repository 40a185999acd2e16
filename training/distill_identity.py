"""Fine-tune a face-pretrained embedder for FACECOM's degradations by distillation from clean photos.

FACECOM's training split pairs every distorted image with the clean photo it was made from (pixel-aligned),
so the frozen pretrained network's embedding of the clean photo is a target that needs no identity labels:
the student (initialised from the same weights) learns to embed a blurred, foggy, dark, noisy, rainy,
down-scaled or sun-glared copy where the teacher puts the clean photo, and to keep clean photos where they
were. The teacher already recognises people across photos (it was trained on millions of faces); the
distillation keeps that and adds robustness to the degradations.

    python -m facecli.training.distill_identity ../shared/data/FACECOM/Task_B --out runs/dlib_distill
    facecli export identity runs/dlib_distill --out identity.onnx

Split: identities are held out (seeded, ``--val-fraction``); model selection uses the cross-photo protocol
on them (a probe's own photo is never in the gallery). The stored threshold is chosen for open-set use on
the training people: a gallery of their clean photos accepts at most ``--open-set-far`` of probes of people
it does not hold (see :func:`open_set_threshold`). ``--epochs 0`` writes the pretrained network itself as
a run (the reference), or with ``--init RUN/model.safetensors`` re-evaluates and re-calibrates a trained one.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from facecli.preprocess import Preprocessing, to_tensor
from facecli.scan import resolve_identity_root, scan_identity_folder
from facecli.training.data import load_crops, predict_batches
from facecli.training.dlib_resnet import CHIP_SIZE, DLIB_MEAN_RGB, DLIB_SCALE
from facecli.training.loop import pick_device, seed_everything
from facecli.training.models import create_model, read_state_dict
from facecli.training.run_dir import WEIGHTS, save_weights, write_config, write_history
from facecli.training.train_identity import split_by_identity, validation_scores


@dataclass
class DistillOptions:
    """Options of the distillation recipe (see ``--help``)."""

    data: Path
    out: Path
    backbone: str = "dlib_resnet"
    epochs: int = 4
    batch_size: int = 64
    lr: float = 5e-5
    weight_decay: float = 1e-4
    clean_weight: float = 0.5
    sunny_weight: float = 1.0
    val_fraction: float = 0.2
    seed: int = 0
    open_set_far: float = 0.01
    init: str = ""
    device: str = "auto"
    limit: int = 0


def dlib_preprocessing() -> Preprocessing:
    """dlib's input: 150x150 RGB chips aligned on the 'dlib' template, (x - mean) / 256."""
    return Preprocessing(size=CHIP_SIZE, mean=tuple(m / 255 for m in DLIB_MEAN_RGB),
                         std=(DLIB_SCALE / 255,) * 3, colour="RGB", detect="auto", template="dlib")


def open_set_threshold(items, emb: np.ndarray, far: float) -> tuple[float, dict[str, float]]:
    """The threshold at which a gallery of these people's clean photos accepts at most ``far`` of strangers.

    Every image (clean or distorted) is a probe of someone absent from the gallery when its own identity's
    photos are left out: its best similarity to the other people's clean photos is an impostor score
    between different photos of different people. The threshold is just above the (1 - far) quantile of
    those best scores, so a gallery like this one (same size, same kind of photos) accepts about ``far``
    of the probes of people it does not hold.
    """
    ident = np.array([it.identity for it in items])
    gal = np.flatnonzero([not it.distortion for it in items])
    e = F.normalize(torch.from_numpy(np.asarray(emb, np.float32)), dim=1)
    best = np.full(len(items), -1.0, np.float32)
    for s in range(0, len(items), 2048):
        sims = (e[s : s + 2048] @ e[gal].T).numpy()
        sims[ident[s : s + 2048, None] == ident[gal][None, :]] = -1.0
        best[s : s + 2048] = sims.max(axis=1)
    thr = float(np.quantile(best, 1 - far)) + 1e-4
    return thr, {"open_set_probes": len(items), "open_set_gallery_photos": len(gal), "open_set_far_target": far,
                 "open_set_accepted_at_threshold": float((best >= thr).mean())}


def distill(opt: DistillOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the recipe; writes ``model.safetensors``, ``config.json`` and ``metrics.csv`` to ``opt.out``."""
    console = console or Console(stderr=True)
    t0 = time.time()
    seed_everything(opt.seed)
    device = pick_device(opt.device)
    root = resolve_identity_root(opt.data, "train")
    items = scan_identity_folder(root)
    tr, va = split_by_identity(items, opt.val_fraction, opt.seed)
    tr_items, va_items = [items[i] for i in tr], [items[i] for i in va]
    if opt.limit:
        keep = set(sorted({it.identity for it in tr_items})[: opt.limit])
        tr_items = [it for it in tr_items if it.identity in keep]
    spec = dlib_preprocessing()
    console.print(f"[bold]distill[/] {len({it.identity for it in tr_items})} train identities ({len(tr_items)} images)"
                  f" / {len({it.identity for it in va_items})} held-out identities ({len(va_items)} images); "
                  f"device {device}")
    train_x, keep_i, _ = load_crops([it.path for it in tr_items], spec)
    tr_items = [tr_items[i] for i in keep_i]
    val_x, vkeep, _ = load_crops([it.path for it in va_items], spec)
    va_items = [va_items[i] for i in vkeep]

    teacher = create_model("identity", opt.backbone, "auto").to(device).eval()
    student = create_model("identity", opt.backbone, opt.init or "auto").to(device)
    # each image's target: the teacher's embedding of the clean photo it was made from (itself when clean)
    clean_at = {(it.identity, it.path.stem): i for i, it in enumerate(tr_items) if not it.distortion}
    src = np.array([clean_at.get((it.identity, it.source_stem), -1) for it in tr_items])
    use = np.flatnonzero(src >= 0)
    clean_idx = np.array(sorted(clean_at.values()))
    t_clean = predict_batches(teacher, train_x[clean_idx], spec, device)
    t_flip = predict_batches(teacher, train_x[clean_idx][:, :, ::-1].copy(), spec, device)
    row = {c: r for r, c in enumerate(clean_idx)}
    target = F.normalize(torch.from_numpy(t_clean), dim=1)
    target_flip = F.normalize(torch.from_numpy(t_flip), dim=1)
    tgt_row = np.array([row[s] for s in src[use]])
    weight = np.array([opt.clean_weight if not tr_items[i].distortion else
                       opt.sunny_weight if tr_items[i].distortion == "sunny" else 1.0 for i in use], np.float32)

    def evaluate(model) -> dict[str, float]:
        return validation_scores(va_items, predict_batches(model, val_x, spec, device))

    history: list[dict[str, Any]] = []
    scores = evaluate(student)
    best = {"epoch": 0, **scores}
    console.print(f"epoch 0 (pretrained): FACECOM top-1 {scores.get('val_facecom_top1', 0):.4f}  cross-photo top-1 "
                  f"{scores.get('val_cross_photo_top1', 0):.4f}")
    history.append({"epoch": 0, "train_loss": float("nan"), **scores})
    opt.out.mkdir(parents=True, exist_ok=True)
    save_weights(student, opt.out / WEIGHTS)
    optimiser = torch.optim.AdamW(student.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)
    steps = max(1, opt.epochs * int(np.ceil(len(use) / opt.batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=opt.lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(opt.seed)
    for epoch in range(1, opt.epochs + 1):
        student.train()
        order = rng.permutation(len(use))
        total, n, t_ep = 0.0, 0, time.time()
        for s in range(0, len(order), opt.batch_size):
            b = order[s : s + opt.batch_size]
            flip = rng.random(len(b)) < 0.5
            chips = train_x[use[b]].copy()
            chips[flip] = chips[flip][:, :, ::-1]
            x = torch.from_numpy(to_tensor(chips, spec)).to(device)
            tgt = torch.where(torch.from_numpy(flip)[:, None], target_flip[tgt_row[b]], target[tgt_row[b]]).to(device)
            out = F.normalize(student(x), dim=1)
            per = 1 - (out * tgt).sum(dim=1)
            w = torch.from_numpy(weight[b]).to(device)
            loss = (per * w).sum() / w.sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            sched.step()
            total += float(loss.detach()) * len(b)
            n += len(b)
        scores = evaluate(student)
        r = {"epoch": epoch, "train_loss": total / max(n, 1), "train_images_per_s": n / (time.time() - t_ep), **scores}
        improved = scores.get("val_cross_photo_top1", 0) > best.get("val_cross_photo_top1", 0)
        if improved:
            best = {"epoch": epoch, **scores}
            save_weights(student, opt.out / WEIGHTS)
        history.append(r)
        write_history(opt.out, history, ["val_facecom_top1", "val_cross_photo_top1"])
        console.print(f"epoch {epoch}: loss {r['train_loss']:.4f}  FACECOM top-1 {scores.get('val_facecom_top1', 0):.4f}"
                      f"  cross-photo top-1 {scores.get('val_cross_photo_top1', 0):.4f}  "
                      f"{r['train_images_per_s']:.0f} img/s {'*' if improved else ''}")
    # calibrated on the training people (leave-one-identity-out), so the held-out people stay unseen
    student.load_state_dict(read_state_dict(opt.out / WEIGHTS))
    thr, open_set = open_set_threshold(tr_items, predict_batches(student, train_x, spec, device), opt.open_set_far)
    config = {
        "task": "identity",
        "backbone": opt.backbone,
        "model_kwargs": {"embedding_dim": 128},
        "preprocessing": spec.to_dict(),
        "threshold": thr,
        "threshold_rule": f"open set: a gallery of the training people's clean photos accepts at most "
                          f"{opt.open_set_far} of probes of people it does not hold (leave-one-identity-out "
                          "over the training people: different photos of different people)",
        "best_epoch": best["epoch"],
        "weights": WEIGHTS,
        "metrics": {"split": "validation", "protocol": "held-out identities (identity-disjoint split)",
                    **{k: v for k, v in best.items() if k.startswith("val_")}, **open_set},
        "data": {"train_root": str(root), "train_identities": len({it.identity for it in tr_items}),
                 "train_images": len(tr_items), "val_identities": len({it.identity for it in va_items}),
                 "val_images": len(va_items), "split": f"identity-disjoint, seed {opt.seed}"},
        "recipe": "distillation from the frozen pretrained network's clean-photo embeddings",
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opt).items()},
        "train_time_s": round(time.time() - t0, 1),
    }
    write_config(opt.out, config)
    console.print(f"best epoch {best['epoch']}; threshold {thr:.4f}; run folder {opt.out}")
    return config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="Task B folder (or its train/ identity root)")
    ap.add_argument("--out", type=Path, default=Path("runs/identity_distill"))
    for f in DistillOptions.__dataclass_fields__.values():
        if f.name in ("data", "out"):
            continue
        ap.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    args = vars(ap.parse_args())
    distill(DistillOptions(**args))


if __name__ == "__main__":
    main()
