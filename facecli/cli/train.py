"""``facecli train gender|identity``: train a model into a run folder (needs ``facecli[train]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.common import add_options, console, print_rows, require_training_stack
from facecli.errors import FacecliError
from facecli.options import Align, Balance, Detect, Device, GenderLoss, IdentityLoss, Select

app = typer.Typer(help="Train a model from a FACECOM-style folder into a run folder (needs the train extra).",
                  no_args_is_help=True)


OutRun = typer.Option(file_okay=False, help="Run folder to write (weights, config.json, metrics.csv, curves.png).")
Backbone = Annotated[str, typer.Option(help="Any timm model name, or a facecli registry name (dlib_resnet).")]
Pretrained = Annotated[str, typer.Option(help="auto (packaged ImageNet weights when the backbone has them), none, "
                                              "hub (download; needs network) or a checkpoint path.")]
Size = Annotated[int | None, typer.Option(min=16, max=1024, help="Square input size in pixels. Default: the backbone's "
                                                                  "(112, dlib_resnet 150).")]
Crop = Annotated[float | None, typer.Option(min=0.1, max=1.0, help="Centred crop, as a fraction of the shorter side (0.8 "
                                                            "keeps the face and hair of a 250x250 LFW-style photo).")]
DetectTrain = Annotated[Detect | None, typer.Option(help="Face detection in preprocessing. Default: the backbone's "
                                                                "(none; dlib_resnet auto).")]
AlignOpt = Annotated[Align | None, typer.Option(help="Align faces: warp the five detected landmarks onto a template "
                                              "(arcface: ArcFace's 112 px one; dlib: dlib's 150 px chip); implies "
                                              "face detection; stored with the model and used by every command.")]
Zoom = Annotated[float | None, typer.Option(min=0.5, max=3.0, help="With --align: > 1 shows more context around the face.")]
Lr = Annotated[float, typer.Option(min=1e-8, max=10.0, help="AdamW learning rate (cosine schedule with warm "
                                                            "restarts).")]
Workers = Annotated[int, typer.Option(min=0, max=64, help="Data-loading worker processes.")]
DeviceT = Annotated[Device, typer.Option(help="Training device: auto (CUDA when torch sees a GPU), cpu or "
                                                   "cuda (error without a GPU).")]
Seed = Annotated[int, typer.Option(help="Random seed (split, initialisation, augmentation).")]
Epochs = Annotated[int, typer.Option(min=1, max=10000, help="Maximum epochs.")]
TrainBatch = Annotated[int, typer.Option(min=2, max=4096, help="Training batch size.")]
Patience = Annotated[int, typer.Option(min=0, help="Early stopping: epochs without gain before stopping.")]


# options every trainer takes: TrainOptions field -> (Typer annotation, default)
TRAIN_OPTIONS = {
    "backbone": (Backbone, "tf_efficientnet_lite0"), "pretrained": (Pretrained, "auto"), "size": (Size, None),
    "crop": (Crop, None), "detect": (DetectTrain, None), "align": (AlignOpt, None), "zoom": (Zoom, None),
    "lr": (Lr, 1e-3), "seed": (Seed, 0), "workers": (Workers, 2), "device": (DeviceT, Device.auto),
}


def _train_options(kw: dict) -> dict:
    """The shared training options, checked: --align needs detection (it implies it unless refused)."""

    require_training_stack()
    if kw["align"] not in (None, "none") and kw["detect"] == "none":
        raise FacecliError("--align needs face detection: drop --detect none")
    return kw


with_train_options = add_options(TRAIN_OPTIONS, "common", _train_options)


@app.command("gender")
@with_train_options
def train_gender_cmd(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Task A folder: DATA/train/{male,female} (+ optional DATA/val), "
                                              "or a folder holding male/ and female/.")],
    out: Annotated[Path, OutRun] = Path("runs/gender"),
    epochs: Epochs = 24,
    batch_size: TrainBatch = 32,
    patience: Patience = 8,
    val_fraction: Annotated[float, typer.Option(min=0.01, max=0.9, help="Held-out fraction when DATA has no val/ "
                                                                        "(grouped by person, stratified, seeded).")]
    = 0.2,
    balance: Annotated[Balance, typer.Option(help="Class imbalance: loss (pos_weight), sampler (weighted sampling), "
                                                  "both or none.")] = Balance.loss,
    loss: Annotated[GenderLoss, typer.Option(help="Loss: bce or focal.")] = GenderLoss.bce,
    select: Annotated[Select, typer.Option(help="Best-epoch and threshold criterion: f1 (female) or "
                                                "balanced_accuracy.")] = Select.f1,
    limit: Annotated[int, typer.Option(min=0, help="Use at most this many training images (0 = all).")] = 0,
    *,
    common: dict,
) -> None:
    """Train a gender classifier (label 0 = male, 1 = female; female is the positive class)."""
    from facecli.summary import gender_rows, gender_title
    from facecli.training.train_gender import GenderTrainOptions, train_gender

    opt = GenderTrainOptions(data=data, out=out, epochs=epochs, batch_size=batch_size, patience=patience,
                             val_fraction=val_fraction, balance=balance.value, loss=loss.value, select=select.value,
                             limit=limit, **common)
    cfg = train_gender(opt, console())
    m = cfg["metrics"]
    print_rows(gender_title(m, f"best epoch {cfg['best_epoch']} on {m['protocol']}"), gender_rows(m))
    console().print(f"wrote run folder {out} (export it with 'facecli export gender {out}')")


@app.command("identity")
@with_train_options
def train_identity_cmd(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Task B folder: DATA/train/<identity>/ (+ optional DATA/val), or a "
                                              "folder of identity folders.")],
    out: Annotated[Path, OutRun] = Path("runs/identity"),
    embedding_dim: Annotated[int, typer.Option(min=2, max=4096, help="Embedding size.")] = 512,
    loss: Annotated[IdentityLoss, typer.Option(help="arcface (additive angular margin) or triplet (batch-hard, "
                                                    "identities x images batches).")] = IdentityLoss.arcface,
    margin: Annotated[float, typer.Option(min=0.0, max=3.0, help="ArcFace angular margin (radians) or triplet "
                                                                 "margin.")] = 0.3,
    epochs: Epochs = 20,
    batch_size: TrainBatch = 128,
    patience: Patience = 6,
    val_fraction: Annotated[float, typer.Option(min=0.01, max=0.9, help="Held-out identity fraction when DATA has "
                                                                        "no val/.")] = 0.2,
    degrade_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Probability of an extra synthetic degradation "
                                                                    "per image.")] = 0.5,
    limit: Annotated[int, typer.Option(min=0, help="Use at most this many training identities (0 = all).")] = 0,
    init: Annotated[Path | None, typer.Option(exists=True, help="Fine-tune from a previous identity run folder: its "
                                                                "whole embedder is loaded and the ArcFace class "
                                                                "centres start at the class means of its "
                                                                "embeddings.")] = None,
    strong_glare: Annotated[bool, typer.Option("--strong-glare", help="Add a glare that washes the face out (like "
                                                                      "FACECOM's sunny images) to the synthetic "
                                                                      "degradations.")] = False,
    *,
    common: dict,
) -> None:
    """Train a face embedder on clean and distorted images; select on held-out identities."""
    from facecli.training.train_identity import IdentityTrainOptions, train_identity

    opt = IdentityTrainOptions(data=data, out=out, embedding_dim=embedding_dim, loss=loss.value, margin=margin,
                               epochs=epochs, batch_size=batch_size, patience=patience, val_fraction=val_fraction,
                               degrade_p=degrade_p, limit=limit, init=init, strong_glare=strong_glare, **common)
    cfg = train_identity(opt, console())
    m = cfg["metrics"]
    print_rows(f"identity: best epoch {cfg['best_epoch']} on {m['protocol']}",
               [(k, v) for k, v in m.items() if k.startswith("val_")])
    console().print(f"wrote run folder {out} (export it with 'facecli export identity {out}')")
