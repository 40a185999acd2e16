"""The ``facecli`` command line. It parses arguments, calls the library and prints; no model logic here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from facecli.errors import FacecliError

app = typer.Typer(
    help="Gender classification and distortion-robust face recognition: train, export, gallery, match, classify.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
train_app = typer.Typer(help="Train a model from a FACECOM-style folder into a run folder.", no_args_is_help=True)
export_app = typer.Typer(help="Export a run folder to an ONNX model (checked against PyTorch).", no_args_is_help=True)
evaluate_app = typer.Typer(help="Evaluate a model on a labelled folder and write a full report.", no_args_is_help=True)
gallery_app = typer.Typer(help="Build, extend and inspect galleries of identity templates.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(export_app, name="export")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(gallery_app, name="gallery")

ModelOpt = Annotated[Path | None, typer.Option("--model", "-m", help="ONNX model from 'facecli export'. "
                                               "Default: the shipped model in models/.")]
BatchOpt = Annotated[int, typer.Option(min=1, help="Images per inference batch.")]
DetectOpt = Annotated[str | None, typer.Option(
    help="Face detection: 'auto' (MTCNN with five landmarks; faces are aligned as the model was trained; "
         "face_status says detected, fallback or not_found) or 'none' (centred crop). "
         "Default: what the model was trained with.")]
AlignOpt = Annotated[str, typer.Option(
    help="Align faces: 'arcface' warps the five detected landmarks onto ArcFace's template (implies "
         "--detect auto; stored with the model and used by every command), or 'none' (no alignment).")]
ZoomOpt = Annotated[float, typer.Option(min=0.5, max=3.0, help="With --align: > 1 shows more context around the face.")]
DeviceOpt = Annotated[str, typer.Option(help="Inference device: auto (CUDA when usable, else CPU), cuda or cpu.")]


def _console():
    from facecli.report import console

    return console()


def _check_detect(detect: str | None) -> None:
    if detect not in (None, "auto", "none"):
        raise FacecliError(f"--detect must be 'auto' or 'none', not {detect!r}")


def _progress(total: int, what: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                   TimeRemainingColumn(), console=_console(), transient=False)
    return bar, bar.add_task(what, total=total, rate="")


# ------------------------------------------------------------------ train


@train_app.command("gender")
def train_gender_cmd(
    data: Annotated[Path, typer.Argument(help="Task A folder: DATA/train/{male,female} (+ optional DATA/val), "
                                              "or a folder holding male/ and female/.")],
    out: Annotated[Path, typer.Option(help="Run folder to write (weights, config.json, metrics.csv, curves.png).")]
    = Path("runs/gender"),
    backbone: Annotated[str, typer.Option(help="Any timm model name.")] = "tf_efficientnet_lite0",
    pretrained: Annotated[str, typer.Option(help="'auto' (packaged ImageNet weights when the backbone has them), "
                                                 "'none', 'hub' (download; needs network) or a checkpoint path.")]
    = "auto",
    size: Annotated[int, typer.Option(min=16, max=1024, help="Square input size in pixels.")] = 112,
    crop: Annotated[float, typer.Option(min=0.1, max=1.0, help="Centred crop, as a fraction of the shorter side.")] = 0.8,
    detect: Annotated[str, typer.Option(help="Face detection in preprocessing: none or auto.")] = "none",
    align: AlignOpt = "none",
    zoom: ZoomOpt = 1.0,
    epochs: Annotated[int, typer.Option(min=1, help="Maximum epochs.")] = 24,
    batch_size: Annotated[int, typer.Option(min=2, help="Training batch size.")] = 32,
    lr: Annotated[float, typer.Option(min=1e-8, max=10.0, help="AdamW learning rate (cosine schedule with warm "
                                                               "restarts).")] = 1e-3,
    patience: Annotated[int, typer.Option(min=0, help="Early stopping: epochs without gain before stopping.")] = 8,
    val_fraction: Annotated[float, typer.Option(min=0.01, max=0.9, help="Held-out fraction when DATA has no val/ folder "
                                                      "(stratified, seeded).")] = 0.2,
    seed: Annotated[int, typer.Option(help="Random seed (split, initialisation, augmentation).")] = 0,
    balance: Annotated[str, typer.Option(help="Class imbalance: loss (pos_weight), sampler (weighted sampling), "
                                              "both or none.")] = "loss",
    loss: Annotated[str, typer.Option(help="bce or focal.")] = "bce",
    select: Annotated[str, typer.Option(help="Best-epoch and threshold criterion: f1 (female) or "
                                             "balanced_accuracy.")] = "f1",
    workers: Annotated[int, typer.Option(min=0, max=64, help="Data-loading worker processes.")] = 2,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    limit: Annotated[int, typer.Option(min=0, help="Use at most this many training images (0 = all).")] = 0,
) -> None:
    """Train a gender classifier (label 0 = male, 1 = female; female is the positive class)."""
    from training.train_gender import GenderTrainOptions, train_gender

    _check_choice("balance", balance, ("loss", "sampler", "both", "none"))
    _check_choice("loss", loss, ("bce", "focal"))
    _check_choice("select", select, ("f1", "balanced_accuracy"))
    _check_detect(detect)
    _check_align(align, detect, zoom)
    opt = GenderTrainOptions(data=data, out=out, backbone=backbone, pretrained=pretrained, size=size, crop=crop,
                             detect=detect, align=align, zoom=zoom, epochs=epochs, batch_size=batch_size, lr=lr,
                             patience=patience,
                             val_fraction=val_fraction, seed=seed, balance=balance, loss=loss, select=select,
                             workers=workers, device=device, limit=limit)
    cfg = train_gender(opt, _console())
    _print_gender_summary(cfg["metrics"], f"best epoch {cfg['best_epoch']} on {cfg['metrics']['protocol']}")
    _console().print(f"run folder: {out}")


def _check_out_file(out: Path) -> None:
    """Refuse an --out that cannot be written as a file before any work starts."""
    if out.is_dir():
        raise FacecliError(f"--out {out} is a folder; give a file name (e.g. {out / 'results.csv'})")
    if out.parent.exists() and not out.parent.is_dir():
        raise FacecliError(f"--out {out}: {out.parent} is not a folder")


def _check_align(align: str, detect: str, zoom: float) -> None:
    from facecli.align import TEMPLATES

    _check_choice("align", align, ("none", *sorted(TEMPLATES)))
    if align != "none" and detect == "none" and "--detect" in sys.argv:
        raise FacecliError("--align needs face detection: drop --detect none")
    if not 0.5 <= zoom <= 3.0:
        raise FacecliError(f"--zoom must lie in [0.5, 3], not {zoom}")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise FacecliError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, not {value!r}")


def _print_gender_summary(m: dict, title: str) -> None:
    from facecli.report import metric_table

    c = _console()
    c.print(metric_table(f"gender: {title} ({m['n']} images: {m['n_male']} male, {m['n_female']} female)", [
        ("accuracy", m["accuracy"]), ("precision (female)", m["precision"]), ("recall (female)", m["recall"]),
        ("F1 (female)", m["f1"]), ("balanced accuracy", m["balanced_accuracy"]), ("ROC AUC", m["roc_auc"]),
        ("threshold", m["threshold"]),
    ]))
    cm = m["confusion_matrix"]
    c.print(f"confusion matrix (rows true, cols predicted) male: {cm[0]}  female: {cm[1]}")


# ------------------------------------------------------------------ export


def _export(task: str, run_dir: Path, out: Path) -> None:
    from training.export import export_run

    info = export_run(run_dir, out, task=task)
    _console().print(f"exported {task} model to {info['out']} ({info['bytes'] / 1e6:.1f} MB); "
                     f"max abs diff vs PyTorch {info['max_abs_diff']:.2e}")


@export_app.command("gender")
def export_gender_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by 'facecli train gender'.")],
    out: Annotated[Path, typer.Option(help="ONNX file to write.")] = Path("gender.onnx"),
) -> None:
    """Export a gender run to ONNX (dynamic batch; outputs P(female); preprocessing in its metadata)."""
    _export("gender", run_dir, out)


@export_app.command("identity")
def export_identity_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by 'facecli train identity'.")],
    out: Annotated[Path, typer.Option(help="ONNX file to write.")] = Path("embedder.onnx"),
) -> None:
    """Export an identity run to ONNX (dynamic batch; outputs L2-normalised embeddings)."""
    _export("identity", run_dir, out)


# ------------------------------------------------------------------ classify / evaluate gender


@app.command("classify")
def classify_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder scanned recursively for jpg, jpeg, png, bmp, webp, tif.")],
    out: Annotated[Path, typer.Option(help="CSV file to write: path, face, label, p_female, face_status, box, "
                                           "landmarks, error.")] = Path("results.csv"),
    model: ModelOpt = None,
    threshold: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="P(female) threshold. Default: the model's "
                                                         "validation-tuned one.")] = None,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
) -> None:
    """Classify every image under FOLDER as male or female and write a CSV (one row per face)."""
    from facecli.atomic import write_with
    from facecli.classify import classify_images
    from facecli.runtime import load_model
    from facecli.scan import require_dir, scan_images

    _check_detect(detect)
    _check_out_file(out)
    root = require_dir(folder)
    paths = scan_images(root)
    m = load_model(model, "gender", device)
    c = _console()
    c.print(f"{len(paths)} images; model {m.path.name} on {m.provider}")
    bar, task = _progress(len(paths), "classify")
    with bar:
        df = classify_images(m, paths, root, batch_size=batch_size, detect=detect, threshold=threshold,
                             on_progress=lambda n: bar.advance(task, n))
    write_with(out, lambda tmp: df.to_csv(tmp, index=False))
    _print_classify_summary(df, len(paths))
    c.print(f"wrote {out}")


def _print_classify_summary(df, n_images: int) -> None:
    from facecli.report import metric_table

    ok = df[df["error"] == ""]
    rows = [("images", n_images), ("rows (faces)", len(ok))]
    rows += [(f"label {lab}", int((ok["label"] == lab).sum())) for lab in ("male", "female")]
    rows += _face_status_rows(ok)
    rows.append(("files that failed", int((df["error"] != "").sum())))
    _console().print(metric_table("classify summary", rows))


def _face_status_rows(ok) -> list[tuple[str, int]]:
    """Summary rows counting faces detected, placed by the fallback, and images with no face."""
    if "face_status" not in ok or not (ok["face_status"] != "off").any():
        return []
    st = ok["face_status"]
    return [("faces detected", int((st == "detected").sum())),
            ("faces placed by the fallback (degraded image)", int((st == "fallback").sum())),
            ("images with no face found (no label)", int(ok[st == "not_found"]["path"].nunique()))]


@evaluate_app.command("gender")
def evaluate_gender_cmd(
    data: Annotated[Path, typer.Argument(help="Labelled folder with male/ and female/ (or a Task A folder: "
                                              "its val/ is used).")],
    out: Annotated[Path, typer.Option(help="Report folder: predictions.csv, metrics.json, PNG plots.")]
    = Path("eval-gender"),
    model: ModelOpt = None,
    threshold: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Default: the model's stored threshold.")] = None,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
) -> None:
    """Evaluate a gender model: accuracy, precision, recall, F1, balanced accuracy, confusion matrix, plots."""
    from facecli.evaluate import evaluate_gender

    _check_detect(detect)
    m = _load(model, "gender", device)
    bar, task = _progress(0, "evaluate")
    with bar:
        res = evaluate_gender(m, data, out, threshold=threshold, detect=detect, batch_size=batch_size,
                              on_total=lambda n: bar.update(task, total=n),
                              on_progress=lambda n: bar.advance(task, n))
    _print_gender_summary(res["metrics"], f"{data} with {m.path.name}")
    if res["metrics"].get("failed"):
        _console().print(f"files that failed: {res['metrics']['failed']}")
    _console().print(f"wrote {out}/predictions.csv, metrics.json and plots")


def _load(model: Path | None, task: str, device: str):
    from facecli.runtime import load_model

    m = load_model(model, task, device)
    _console().print(f"model {m.path} ({m.meta.get('backbone')}) on {m.provider}")
    return m


# ------------------------------------------------------------------ identity


@train_app.command("identity")
def train_identity_cmd(
    data: Annotated[Path, typer.Argument(help="Task B folder: DATA/train/<identity>/ (+ optional DATA/val), or a "
                                              "folder of identity folders.")],
    out: Annotated[Path, typer.Option(help="Run folder to write.")] = Path("runs/identity"),
    backbone: Annotated[str, typer.Option(help="Any timm model name.")] = "tf_efficientnet_lite0",
    pretrained: Annotated[str, typer.Option(help="'auto', 'none', 'hub' or a checkpoint path (as for gender).")]
    = "auto",
    size: Annotated[int, typer.Option(min=16, max=1024, help="Square input size in pixels.")] = 112,
    crop: Annotated[float, typer.Option(min=0.1, max=1.0, help="Centred crop, as a fraction of the shorter side "
                                                               "(0.8 keeps the face and hair of a 250x250 "
                                                               "LFW-style photo).")] = 0.8,
    detect: Annotated[str, typer.Option(help="Face detection in preprocessing: none or auto.")] = "none",
    align: AlignOpt = "none",
    zoom: ZoomOpt = 1.0,
    embedding_dim: Annotated[int, typer.Option(min=2, max=4096, help="Embedding size.")] = 512,
    loss: Annotated[str, typer.Option(help="arcface (additive angular margin) or triplet (batch-hard, "
                                           "identities x images batches).")] = "arcface",
    margin: Annotated[float, typer.Option(min=0.0, max=3.0, help="ArcFace angular margin (radians) or triplet "
                                                                 "margin.")] = 0.3,
    epochs: Annotated[int, typer.Option(min=1, help="Maximum epochs.")] = 20,
    batch_size: Annotated[int, typer.Option(min=2, help="Training batch size.")] = 128,
    lr: Annotated[float, typer.Option(min=1e-8, max=10.0, help="AdamW learning rate (cosine schedule with warm "
                                                               "restarts).")] = 1e-3,
    patience: Annotated[int, typer.Option(min=0, help="Early stopping patience in epochs.")] = 6,
    val_fraction: Annotated[float, typer.Option(min=0.01, max=0.9, help="Held-out identity fraction when DATA "
                                                                        "has no val/.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    degrade_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Probability of an extra synthetic "
                                                                    "degradation per image.")]
    = 0.5,
    workers: Annotated[int, typer.Option(min=0, max=64, help="Data-loading worker processes.")] = 2,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    limit: Annotated[int, typer.Option(min=0, help="Use at most this many training identities (0 = all).")] = 0,
    init: Annotated[Path | None, typer.Option(help="Fine-tune from a previous identity run folder: its whole "
                                                   "embedder is loaded and the ArcFace class centres start at "
                                                   "the class means of its embeddings.")] = None,
    strong_glare: Annotated[bool, typer.Option("--strong-glare", help="Add a glare that washes the face out "
                                                                      "(like FACECOM's sunny images) to the "
                                                                      "synthetic degradations.")] = False,
) -> None:
    """Train a face embedder on clean and distorted images; select on held-out identities."""
    from training.train_identity import IdentityTrainOptions, train_identity

    _check_choice("loss", loss, ("arcface", "triplet"))
    _check_detect(detect)
    _check_align(align, detect, zoom)
    opt = IdentityTrainOptions(data=data, out=out, backbone=backbone, pretrained=pretrained, size=size, crop=crop,
                               detect=detect, align=align, zoom=zoom, embedding_dim=embedding_dim, loss=loss,
                               margin=margin, epochs=epochs,
                               batch_size=batch_size, lr=lr, patience=patience, val_fraction=val_fraction,
                               seed=seed, degrade_p=degrade_p, workers=workers, device=device, limit=limit,
                               init=init, strong_glare=strong_glare)
    cfg = train_identity(opt, _console())
    from facecli.report import metric_table

    m = cfg["metrics"]
    _console().print(metric_table(f"identity: best epoch {cfg['best_epoch']} on {m['protocol']}",
                                  [(k, v) for k, v in m.items() if k.startswith("val_")]))
    _console().print(f"run folder: {out}")


GalleryOpt = Annotated[Path, typer.Option("--gallery", "-g", help="Gallery folder.")]


def _gallery_progress(what: str):
    bar, task = _progress(0, what)
    return bar, (lambda n: bar.update(task, total=n)), (lambda n: bar.advance(task, n))


@gallery_app.command("build")
def gallery_build_cmd(
    root: Annotated[Path, typer.Argument(help="Identity folders: ROOT/<identity>/*.jpg (clean images).")],
    gallery: GalleryOpt = Path("gallery"),
    model: ModelOpt = None,
    per_image: Annotated[bool, typer.Option("--per-image/--templates", help="Keep one vector per photo and "
                                                                           "score an identity by its best photo "
                                                                           "(default), or one template (mean "
                                                                           "embedding) per identity.")] = True,
    include_distorted: Annotated[bool, typer.Option("--include-distorted", help="Also embed distortion/ "
                                                                                "images.")] = False,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
) -> None:
    """Build a gallery (FAISS inner-product index + JSON metadata) from clean identity photos."""
    from facecli.recognise import build_gallery

    _check_detect(detect)
    m = _load(model, "identity", device)
    bar, total, advance = _gallery_progress("embed")
    with bar:
        g, rep = build_gallery(m, root, include_distorted=include_distorted, per_image=per_image,
                               batch_size=batch_size, detect=detect, on_total=total, on_progress=advance)
    g.save(gallery)
    _report_gallery_build(rep, gallery, g)


def _report_gallery_build(rep, path: Path, g) -> None:
    from facecli.report import metric_table

    c = _console()
    c.print(metric_table(f"gallery {path}", [("identities added", rep.identities), ("images embedded", rep.images),
                                             ("identities in gallery", len(g.identities)),
                                             ("files that failed", len(rep.failures)),
                                             ("identities skipped (no usable clean image)",
                                              len(rep.skipped_identities)),
                                             ("default threshold", g.threshold)]))
    for p, e in list(rep.failures.items())[:20]:
        c.print(f"  failed: {p}: {e}")
    if rep.skipped_identities:
        c.print(f"  skipped: {', '.join(rep.skipped_identities[:20])}{' ...' if len(rep.skipped_identities) > 20 else ''}")


@gallery_app.command("add")
def gallery_add_cmd(
    root: Annotated[Path, typer.Argument(help="Identity folders to add; identities already present are replaced.")],
    gallery: GalleryOpt = Path("gallery"),
    model: ModelOpt = None,
    include_distorted: Annotated[bool, typer.Option("--include-distorted")] = False,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
) -> None:
    """Add or replace identities in a gallery without re-embedding the others."""
    from facecli.gallery import Gallery
    from facecli.recognise import embed_identities

    _check_detect(detect)
    g = Gallery.load(gallery)
    m = _load(model, "identity", device)
    g.check_model(m.sha256, m.path)
    bar, total, advance = _gallery_progress("embed")
    with bar:
        rows, vecs, counts, rep = embed_identities(m, root, include_distorted=include_distorted,
                                                   per_image=bool(g.meta.get("per_image")), batch_size=batch_size,
                                                   detect=detect, on_total=total, on_progress=advance)
    def add(current):
        current.check_model(m.sha256, m.path)
        return current.upsert(rows, vecs, counts)

    # re-read and change under the gallery's lock: runs adding at the same time all land
    g, (added, replaced) = Gallery.update(gallery, add)
    _console().print(f"added {added} and replaced {replaced} identities")
    _report_gallery_build(rep, gallery, g)


@gallery_app.command("info")
def gallery_info_cmd(gallery: Annotated[Path, typer.Argument(help="Gallery folder.")] = Path("gallery")) -> None:
    """Print what a gallery holds: identities, images, model, preprocessing, threshold, dates."""
    from facecli.gallery import Gallery
    from facecli.report import metric_table

    g = Gallery.load(gallery)
    counts = g.meta.get("image_counts", {})
    model = g.meta.get("model", {})
    _console().print(metric_table(f"gallery {gallery}", [
        ("identities", len(g.identities)), ("vectors", len(g.rows)), ("images", sum(counts.values())),
        ("one vector per image", bool(g.meta.get("per_image"))), ("dimension", g.dim),
        ("index", g.meta.get("index")), ("threshold", g.threshold),
        ("threshold source", g.meta.get("threshold_source")), ("model", model.get("path")),
        ("model sha256", str(model.get("sha256"))[:16]), ("backbone", model.get("backbone")),
        ("input size", model.get("preprocessing", {}).get("size")), ("created", g.meta.get("created")),
        ("updated", g.meta.get("updated")), ("built from", g.meta.get("source")),
    ]))


ProbesOpt = Annotated[str, typer.Option("--probes", help="Identity layout: which images are probes: distorted "
                                                         "(distortion/), clean or all.")]
LayoutOpt = Annotated[str, typer.Option(help="auto (identity layout when PROBES holds identity folders), "
                                             "identity, or plain (any images, no ground truth).")]


@app.command("match")
def match_cmd(
    probes_dir: Annotated[Path, typer.Argument(metavar="PROBES", help="Identity-layout folder or any folder of "
                                                                      "images.")],
    gallery: GalleryOpt = Path("gallery"),
    threshold: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Accept when cosine similarity >= T. "
                                                    "Default: the gallery's (calibrated, else the model's).")] = None,
    out: Annotated[Path, typer.Option(help="CSV of matches.")] = Path("matches.csv"),
    report: Annotated[Path | None, typer.Option(help="Report folder (metrics JSON, per-distortion CSV) when "
                                                     "ground truth is known. Default: next to --out.")] = None,
    plots: Annotated[bool, typer.Option(help="Also draw the similarity histogram and ROC PNGs in the report "
                                             "(about 2 s more).")] = False,
    probes: ProbesOpt = "distorted",
    layout: LayoutOpt = "auto",
    top_k: Annotated[int, typer.Option(min=1, max=1000, help="Nearest identities listed per probe.")] = 5,
    model: ModelOpt = None,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
) -> None:
    """Match probe images against a gallery; with ground truth, print and save the full metric report."""
    from facecli.atomic import write_with
    from facecli.gallery import Gallery
    from facecli.recognise import match_folder
    from facecli.report import metric_table, print_identity_report, write_identity_report

    _check_choice("probes", probes, ("distorted", "clean", "all"))
    _check_choice("layout", layout, ("auto", "identity", "plain"))
    _check_detect(detect)
    _check_out_file(out)
    g = Gallery.load(gallery)
    m = _load(model, "identity", device)
    bar, total, advance = _gallery_progress("match")
    with bar:
        table, result = match_folder(m, g, probes_dir, threshold=threshold, which=probes, layout=layout,
                                     top_k=top_k, batch_size=batch_size, detect=detect, on_total=total,
                                     on_progress=advance)
    write_with(out, lambda tmp: table.to_csv(tmp, index=False))
    c = _console()
    ok = table[table["error"] == ""]
    c.print(metric_table("match summary", [("probes", len(table)), ("accepted", int(ok["accepted"].sum())),
                                           ("unknown", int((~ok["accepted"].astype(bool)).sum())),
                                           *_face_status_rows(ok),
                                           ("files that failed", int((table["error"] != "").sum())),
                                           ("threshold", threshold if threshold is not None else g.threshold)]))
    if result is not None:
        rdir = report or out.with_name(out.stem + "_report")
        note = _open_set_note(result.metrics)
        write_identity_report(result, rdir, extra={"probes_folder": str(probes_dir), "gallery": str(gallery),
                                                   "note": note}, plots=plots)
        print_identity_report(c, result, f"match {probes_dir} against {gallery}")
        if note:
            c.print(note)
        c.print(f"wrote {out} and report in {rdir}")
    else:
        c.print(f"wrote {out} (no ground truth: no metrics)")


def _open_set_note(m: dict) -> str:
    if m.get("probes_in_gallery") == 0:
        return ("open-set test: no probe identity is in the gallery, so top-1 and macro-F1 do not apply; "
                "FPIR is the share of probes wrongly accepted, and every rejection is correct.")
    if m.get("probes_open_set"):
        return f"{m['probes_open_set']} probes have identities not in the gallery (open set)."
    return ""


@app.command("calibrate")
def calibrate_cmd(
    data: Annotated[Path, typer.Argument(help="Labelled identity-layout folder whose identities are in the "
                                              "gallery (e.g. the gallery's own folder: its distorted images).")],
    gallery: GalleryOpt = Path("gallery"),
    objective: Annotated[str, typer.Option(help="f1 (maximum verification F1) or far (target false accept "
                                                "rate).")] = "f1",
    far: Annotated[float, typer.Option(min=0.0, max=1.0, help="Target false accept rate for --objective far.")] = 1e-3,
    probes: ProbesOpt = "distorted",
    model: ModelOpt = None,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
) -> None:
    """Choose the match threshold on a labelled folder and store it in the gallery."""
    from facecli.calibrate import calibrate_gallery
    from facecli.gallery import Gallery

    _check_choice("objective", objective, ("f1", "far"))
    g = Gallery.load(gallery)
    m = _load(model, "identity", device)
    bar, total, advance = _gallery_progress("calibrate")
    with bar:
        res = calibrate_gallery(m, g, data, objective=objective, far=far, which=probes, batch_size=batch_size,
                                detect=detect, on_total=total, on_progress=advance)
    Gallery.update(gallery, lambda current: current.meta.update(threshold=g.meta["threshold"],
                                                                threshold_source=g.meta["threshold_source"]))
    _console().print(f"threshold {res['threshold']:.4f} ({res['source']}); at it: FAR {res['far']:.2e}, "
                     f"TAR {res['tar']:.4f}, verification F1 {res['f1']:.4f} "
                     f"({res['genuine']} genuine, {res['impostor']} impostor pairs); stored in {gallery}")


@evaluate_app.command("identity")
def evaluate_identity_cmd(
    data: Annotated[Path, typer.Argument(help="Task B-layout folder (ROOT/<identity>/ with distortion/), or a "
                                              "Task B folder whose val/ is used.")],
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("eval-identity"),
    threshold: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Default: the model's.")] = None,
    model: ModelOpt = None,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
) -> None:
    """FACECOM protocol (gallery = clean, probes = distorted) and cross-photo protocol, full report."""
    from facecli.evaluate import evaluate_identity
    from facecli.report import print_identity_report

    _check_detect(detect)
    m = _load(model, "identity", device)
    bar, total, advance = _gallery_progress("embed")
    with bar:
        results = evaluate_identity(m, data, out, threshold=threshold, detect=detect, batch_size=batch_size,
                                    on_total=total, on_progress=advance)
    c = _console()
    for name, res in results.items():
        print_identity_report(c, res, f"{name} protocol on {data}")
    if "cross_photo" not in results:
        c.print("cross-photo protocol: no identity with two or more clean photos in this folder")
    c.print(f"wrote report to {out}")


def _click_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(usage errors, aborts) of the click that Typer runs on (its own copy in recent releases)."""
    usage: list[type] = []
    aborts: list[type] = [typer.Abort]
    for mod in ("click.exceptions", "typer._click.exceptions"):
        try:
            m = __import__(mod, fromlist=["UsageError"])
        except ImportError:
            continue
        usage += [m.UsageError] if hasattr(m, "UsageError") else []
        aborts += [m.Abort] if hasattr(m, "Abort") else []
    return tuple(usage), tuple(aborts)


def main() -> None:
    """Console-script entry point.

    Bad input (a FacecliError, or an option value outside its range, a missing argument, an unknown option)
    becomes one line on stderr, ``error: ...``, and exit status 2, never a traceback.
    """
    usage_errors, aborts = _click_errors()
    try:
        rv = app(standalone_mode=False)
    except FacecliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except usage_errors as exc:
        msg = exc.format_message()
        if not msg:  # no arguments: the help was shown
            sys.exit(2)
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, *aborts):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()

