"""``facecli evaluate gender|identity``: full metric reports on labelled folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.common import ModelOpt, SplitOpt, ThresholdOpt, console, load, print_rows, progress, with_run_options, wrote
from facecli.options import RunOptions

app = typer.Typer(help="Evaluate a model on a labelled folder and write a full report.", no_args_is_help=True)

ReportDir = typer.Option(file_okay=False, help="Report folder to write (created when missing).")


@app.command("gender")
@with_run_options
def evaluate_gender_cmd(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Labelled folder with male/ and female/, or a Task A folder (its "
                                              "val/ is used; --split train to use train/).")],
    out: Annotated[Path, ReportDir] = Path("eval-gender"),
    model: ModelOpt = None,
    split: SplitOpt = None,
    threshold: ThresholdOpt = None,
    *,
    run: RunOptions,
) -> None:
    """Evaluate a gender model: accuracy, precision, recall, F1, balanced accuracy, confusion matrix, plots."""
    from facecli.api import evaluate_gender
    from facecli.summary import gender_title

    m = load(model, "gender", run, threshold=threshold)
    with progress(run, "evaluate") as run:
        res = evaluate_gender(data, m, split=None if split is None else split.value, threshold=threshold,
                              options=run)
    res.save(out)
    metrics = res.metrics
    print_rows(gender_title(metrics, f"{metrics['data']} with {m.path.name}"), res.summary_rows())
    c = console()
    c.print(f"scored {metrics['data']}")
    cm = metrics["confusion_matrix"]
    c.print(f"confusion matrix (rows true, cols predicted) male: {cm[0]}  female: {cm[1]}")
    if metrics.get("failed"):
        c.print(f"files that failed: {metrics['failed']}")
    wrote(out, ": predictions.csv, metrics.json and plots")


@app.command("identity")
@with_run_options
def evaluate_identity_cmd(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Task B-layout folder (ROOT/<identity>/ with distortion/), or a Task "
                                              "B folder (its val/ is used; --split train to use train/).")],
    out: Annotated[Path, ReportDir] = Path("eval-identity"),
    model: ModelOpt = None,
    split: SplitOpt = None,
    threshold: ThresholdOpt = None,
    *,
    run: RunOptions,
) -> None:
    """FACECOM protocol (gallery = clean, probes = distorted) and cross-photo protocol, full report."""
    from facecli.api import evaluate_identity
    from facecli.report import print_identity_report

    m = load(model, "identity", run, threshold=threshold)
    with progress(run, "embed") as run:
        res = evaluate_identity(data, m, split=None if split is None else split.value, threshold=threshold,
                                options=run)
    res.save(out)
    c = console()
    for name, r in res.results.items():
        print_identity_report(c, r, f"{name} protocol on {data}")
    if "cross_photo" not in res.results:
        c.print("cross-photo protocol: no identity with two or more clean photos in this folder")
    wrote(out, " (report)")
