"""Fine-tune a face-pretrained embedder for FACECOM's degradations by distillation from clean photos.

FACECOM's training split pairs every distorted image with the clean photo it was made from (pixel-aligned),
so the frozen pretrained network's embedding of the clean photo is a target that needs no identity labels:
the student (initialised from the same weights) learns to embed a blurred, foggy, dark, noisy, rainy,
down-scaled or sun-glared copy where the teacher puts the clean photo, and to keep clean photos where they
were. The teacher already recognises people across photos (it was trained on millions of faces); the
distillation keeps that and adds robustness to the degradations.

    python -m facecli.training.distill_identity ../shared/data/FACECOM/Task_B --out runs/dlib_distill
    facecli export identity runs/dlib_distill --out identity.onnx

The recipe runs the one trainer (:func:`facecli.training.loop.fit`) with AdamW, a one-cycle schedule and
the cosine-distance loss (:class:`facecli.training.losses.CosineDistillLoss`), each sample weighted
(``--clean-weight`` for clean photos, ``--sunny-weight`` for sun-glared ones, 1 for the other distortions).

Split: identities of DATA/train are held out (seeded, ``--val-fraction``; a val/ folder is not used); model
selection uses the cross-photo protocol on them (a probe's own photo is never in the gallery). The stored
threshold is chosen for open-set use on the training people: a gallery of their clean photos accepts at
most ``--open-set-far`` of probes of people it does not hold (see :func:`open_set_threshold`).
``--epochs 0`` writes the pretrained network itself as a run (the reference), or with
``--init RUN/model.safetensors`` re-evaluates and re-calibrates a trained one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from facecli.training.data import predict_batches
from facecli.training.loop import Fit, fit, one_cycle
from facecli.training.losses import CosineDistillLoss
from facecli.training.models import backbone_preprocessing, create_model
from facecli.training.recipe import FitOptions, Run, recipe_main, start_run, write_run
from facecli.training.skeleton import load_split
from facecli.training.train_identity import describe_identity, identity_split, validation_scores
from rich.console import Console

from facecli.card import ModelCard
from facecli.face.preprocess import to_tensor


@dataclass
class DistillOptions(FitOptions):
    """Options of the distillation recipe (see ``--help``)."""

    out: Path = Path("runs/identity_distill")
    backbone: str = "dlib_resnet"
    epochs: int = 4
    batch_size: int = 64
    lr: float = 5e-5
    weight_decay: float = 1e-4
    clean_weight: float = 0.5
    sunny_weight: float = 1.0
    open_set_far: float = 0.01
    init: str = ""


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


class IndexBatches:
    """Shuffled batches of sample indices, a new seeded order every epoch (a loader for :func:`fit`)."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.rng = n, batch_size, np.random.default_rng(seed)

    def __len__(self) -> int:
        return int(np.ceil(self.n / self.batch_size))

    def __iter__(self):
        order = self.rng.permutation(self.n)
        return iter([order[s : s + self.batch_size] for s in range(0, self.n, self.batch_size)])


@dataclass
class Targets:
    """What the student learns: for sample ``k`` (image ``use[k]``), the teacher's unit embedding of its clean
    photo (``clean[k]``; ``flipped[k]`` for the mirrored photo) and its weight in the loss."""

    use: np.ndarray
    clean: torch.Tensor
    flipped: torch.Tensor
    weight: np.ndarray


def teacher_targets(opt: DistillOptions, run: Run, tr_items: list, train_x: np.ndarray) -> Targets:
    """Embed every clean training photo (and its mirror) with the frozen pretrained network; each image's
    target is the clean photo it was made from (itself when clean); images without one are left out."""
    teacher = create_model("identity", opt.backbone, "auto").to(run.device).eval()
    clean_at = {(it.identity, it.path.stem): i for i, it in enumerate(tr_items) if not it.distortion}
    src = np.array([clean_at.get((it.identity, it.source_stem), -1) for it in tr_items])
    use = np.flatnonzero(src >= 0)
    clean_idx = np.array(sorted(clean_at.values()))
    row = {c: r for r, c in enumerate(clean_idx)}
    tgt_row = torch.from_numpy(np.array([row[s] for s in src[use]], np.int64))

    def embed(chips: np.ndarray) -> torch.Tensor:
        return F.normalize(torch.from_numpy(predict_batches(teacher, chips, run.spec, run.device)), dim=1)[tgt_row]

    weight = np.array([opt.clean_weight if not tr_items[i].distortion else
                       opt.sunny_weight if tr_items[i].distortion == "sunny" else 1.0 for i in use], np.float32)
    return Targets(use, embed(train_x[clean_idx]), embed(train_x[clean_idx][:, :, ::-1].copy()), weight)


def distill_step(student: torch.nn.Module, train_x: np.ndarray, t: Targets, run: Run, seed: int):
    """The per-batch step: a batch of sample indices, each image mirrored with probability 1/2 (and its
    target with it), the weighted cosine distance to the teacher's embedding."""
    rng, loss = np.random.default_rng(seed + 1), CosineDistillLoss()

    def step(b: np.ndarray) -> tuple[torch.Tensor, int]:
        flip = rng.random(len(b)) < 0.5
        chips = train_x[t.use[b]].copy()
        chips[flip] = chips[flip][:, :, ::-1]
        x = torch.from_numpy(to_tensor(chips, run.spec)).to(run.device)
        tgt = torch.where(torch.from_numpy(flip)[:, None], t.flipped[b], t.clean[b]).to(run.device)
        return loss(student(x), tgt, torch.from_numpy(t.weight[b]).to(run.device)), len(b)

    return step


def distill(opt: DistillOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the recipe; writes ``model.safetensors``, ``config.json``, ``metrics.csv`` and ``curves.png`` to
    ``opt.out`` and returns the config."""
    console = console or Console(stderr=True)
    tr_items, va_items, split_note, root = identity_split(opt, use_val_folder=False)
    run = start_run(opt, "distill", console, backbone_preprocessing(opt.backbone))
    console.print(f"{len({it.identity for it in tr_items})} train identities ({len(tr_items)} images) / "
                  f"{len({it.identity for it in va_items})} held-out identities ({len(va_items)} images)")
    train_x, keep_i, val_x, vkeep, unreadable = load_split(run, [it.path for it in tr_items],
                                                           [it.path for it in va_items], console)
    tr_items, va_items = [tr_items[i] for i in keep_i], [va_items[i] for i in vkeep]
    targets = teacher_targets(opt, run, tr_items, train_x)
    student = create_model("identity", opt.backbone, opt.init or "auto").to(run.device)
    how = Fit(select_key="val_cross_photo_top1", schedule=one_cycle(0.1), clip_grad=None, evaluate_first=True,
              describe=describe_identity, plot_keys=["val_facecom_top1", "val_cross_photo_top1"])
    history, best_epoch = fit(student, distill_step(student, train_x, targets, run, opt.seed),
                              IndexBatches(len(targets.use), opt.batch_size, opt.seed),
                              lambda: validation_scores(va_items, predict_batches(student, val_x, run.spec, run.device)),
                              opt, how, run.device, console)
    # calibrated on the training people (leave-one-identity-out), so the held-out people stay unseen
    thr, open_set = open_set_threshold(tr_items, predict_batches(student, train_x, run.spec, run.device),
                                       opt.open_set_far)
    best = next(r for r in history if r["epoch"] == best_epoch)
    card = ModelCard(task="identity", backbone=opt.backbone, preprocessing=run.spec, threshold=thr,
                     threshold_source=f"open set: a gallery of the training people's clean photos accepts at most "
                                      f"{opt.open_set_far} of probes of people it does not hold (leave-one-identity-"
                                      "out over the training people: different photos of different people)",
                     embedding_dim=128,
                     metrics={"split": "validation", "protocol": "held-out identities (identity-disjoint split)",
                              **{k: v for k, v in best.items() if k.startswith("val_")}, **open_set})
    data = {"train_root": str(root), "train_identities": len({it.identity for it in tr_items}),
            "train_images": len(tr_items), "val_identities": len({it.identity for it in va_items}),
            "val_images": len(va_items), "unreadable": unreadable, "split": split_note}
    config = write_run(opt, run, card, best_epoch=best_epoch, data=data, model_kwargs={"embedding_dim": 128},
                       recipe="distillation from the frozen pretrained network's clean-photo embeddings")
    console.print(f"best epoch {best_epoch}; threshold {thr:.4f}; run folder {opt.out}")
    return config


def main() -> None:
    recipe_main(DistillOptions, distill, __doc__)


if __name__ == "__main__":
    main()
