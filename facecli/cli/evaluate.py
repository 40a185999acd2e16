"""``facecli evaluate gender|identity``: full metric reports on labelled folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.common import (
    BatchOpt,
    DetectOpt,
    Device,
    DeviceOpt,
    ModelOpt,
    SplitOpt,
    console,
    load,
    print_rows,
    progress_callbacks,
    value,
)

app = typer.Typer(help="Evaluate a model on a labelled folder and write a full report.", no_args_is_help=True)

ReportDir = typer.Option(file_okay=False, help="Report folder to write (created when missing).")


@app.command("gender")
def evaluate_gender_cmd(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Labelled folder with male/ and female/, or a Task A folder (its "
                                              "val/ is used; --split train to use train/).")],
    out: Annotated[Path, ReportDir] = Path("eval-gender"),
    model: ModelOpt = None,
    split: SplitOpt = None,
    threshold: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="P(female) threshold. Default: the "
                                                                           "model's stored one.")] = None,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = Device.auto,
) -> None:
    """Evaluate a gender model: accuracy, precision, recall, F1, balanced accuracy, confusion matrix, plots."""
    from facecli.api import evaluate_gender
    from facecli.summary import gender_rows, gender_title

    m = load(model, "gender", device)
    bar, on_total, on_progress = progress_callbacks("evaluate")
    with bar:
        res = evaluate_gender(data, m, out=out, split=value(split), threshold=threshold, detect=value(detect),
                              batch_size=batch_size, on_total=on_total, on_progress=on_progress)
    metrics = res["metrics"]
    print_rows(gender_title(metrics, f"{metrics['data']} with {m.path.name}"), gender_rows(metrics))
    console().print(f"scored {metrics['data']}")
    cm = metrics["confusion_matrix"]
    c = console()
    c.print(f"confusion matrix (rows true, cols predicted) male: {cm[0]}  female: {cm[1]}")
    if metrics.get("failed"):
        c.print(f"files that failed: {metrics['failed']}")
    c.print(f"wrote {out.resolve()}: predictions.csv, metrics.json and plots")


@app.command("identity")
def evaluate_identity_cmd(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Task B-layout folder (ROOT/<identity>/ with distortion/), or a Task "
                                              "B folder (its val/ is used; --split train to use train/).")],
    out: Annotated[Path, ReportDir] = Path("eval-identity"),
    model: ModelOpt = None,
    split: SplitOpt = None,
    threshold: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Cosine similarity threshold. Default: "
                                                                           "the model's.")] = None,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = Device.auto,
) -> None:
    """FACECOM protocol (gallery = clean, probes = distorted) and cross-photo protocol, full report."""
    from facecli.api import evaluate_identity
    from facecli.report import print_identity_report

    m = load(model, "identity", device)
    bar, on_total, on_progress = progress_callbacks("embed")
    with bar:
        results = evaluate_identity(data, m, out=out, split=value(split), threshold=threshold, detect=value(detect),
                                    batch_size=batch_size, on_total=on_total, on_progress=on_progress)
    c = console()
    for name, res in results.items():
        print_identity_report(c, res, f"{name} protocol on {data}")
    if "cross_photo" not in results:
        c.print("cross-photo protocol: no identity with two or more clean photos in this folder")
    c.print(f"wrote report to {out.resolve()}")
