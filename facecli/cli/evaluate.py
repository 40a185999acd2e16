"""``facecli evaluate gender|identity``: full metric reports on labelled folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli import common
from facecli.options import RunOptions

app = typer.Typer(help="Evaluate a model on a labelled folder and write a full report (gender, identity, cluster).",
                  no_args_is_help=True)

DataArg = Annotated[Path, typer.Argument(exists=True, file_okay=False, help=(
    "Labelled folder: for gender male/ and female/ (or a Task A folder), for identity ROOT/<identity>/ with "
    "distortion/ (or a Task B folder); a Task folder's val/ is used (--split train to use train/)."))]
ReportDir = Annotated[Path, typer.Option(file_okay=False, help="Report folder to write (created when missing).")]


def _evaluate(task: str, data: Path, out: Path, model: Path | None, split, threshold: float | None, raw_csv: bool,
              run: RunOptions, **kw: object) -> None:
    from facecli import api

    m = common.load(model, task, run, threshold=threshold)
    with common.progress(run, "evaluate") as run:
        res = getattr(api, f"evaluate_{task}")(data, m, split=None if split is None else split.value,
                                               threshold=threshold, options=run, **kw)
    res.save(out, raw=raw_csv)
    SHOW[task](res, data, m)
    common.wrote(out, " (report)")


@common.with_run_options
def _gender(data: DataArg, out: ReportDir = Path("eval-gender"), model: common.ModelOpt = None,
            split: common.SplitOpt = None,
            threshold: common.ThresholdOpt = None, frame: common.FrameOpt = True, raw_csv: common.RawCsvOpt = False, *,
            run: RunOptions) -> None:
    """Evaluate a gender model: accuracy, precision, recall, F1, balanced accuracy, confusion matrix, plots
    (predictions.csv, metrics.json)."""
    _evaluate("gender", data, out, model, split, threshold, raw_csv, run, frame=frame)


@common.with_run_options
def _identity(data: DataArg, out: ReportDir = Path("eval-identity"), model: common.ModelOpt = None,
              split: common.SplitOpt = None,
              threshold: common.ThresholdOpt = None, photo: common.EvalPhotoOpt = True, raw_csv: common.RawCsvOpt = False, *,
              run: RunOptions) -> None:
    """FACECOM protocol (gallery = clean, probes = distorted) and cross-photo protocol, full report."""
    _evaluate("identity", data, out, model, split, threshold, raw_csv, run, photo=photo)


def _show_gender(res, data: Path, m) -> None:
    from facecli.summary import gender_title

    metrics = res.metrics
    common.print_rows(gender_title(metrics, f"{metrics['data']} with {m.path.name}"), res.summary_rows())
    c = common.console()
    per = metrics.get("per_class") or {}
    rows = [(f"{label} precision / recall / F1 (n)", f"{r['precision']:.4f} / {r['recall']:.4f} / {r['f1-score']:.4f} "
             f"({int(r['support'])})") for label, r in per.items() if isinstance(r, dict) and "support" in r
            and label not in ("macro avg", "weighted avg", "micro avg")]
    if rows:
        common.print_rows("per class", rows)
    cm = metrics["confusion_matrix"]
    c.print(f"confusion matrix (rows true, cols predicted) male: {cm[0]}  female: {cm[1]}")
    if metrics.get("failed"):
        c.print(f"files that failed: {metrics['failed']}")


def _show_identity(res, data: Path, m) -> None:
    from facecli.report import print_identity_report

    c = common.console()
    for name, r in res.results.items():
        print_identity_report(c, r, f"{name} protocol on {data}")
    if "cross_photo" not in res.results:
        c.print("cross-photo protocol: no identity with two or more clean photos in this folder")


SHOW = {"gender": _show_gender, "identity": _show_identity}
app.command("gender")(_gender)
app.command("identity")(_identity)


@common.with_run_options
def _cluster(data: DataArg, out: ReportDir = Path("eval-cluster"), model: common.ModelOpt = None,
             split: common.SplitOpt = None,
             threshold: common.LinkThresholdOpt = None, fmr: common.LinkFmrOpt = None, photo: common.ClusterPhotoOpt = True,
             exclude: Annotated[list[str] | None, typer.Option(help=(
                 "Leave out a distortion kind (repeat for several), e.g. --exclude sunny."))] = None,
             raw_csv: common.RawCsvOpt = False, *, run: RunOptions) -> None:
    """Cluster every image of an identity-layout folder as 'facecli cluster' does and score it: BCubed and
    pairwise precision, recall and F, clusters against people, per distortion kind."""
    from facecli import api

    m = common.load(model, "identity", run, threshold=threshold)
    with common.progress(run, "evaluate") as run:
        res = api.evaluate_cluster(data, m, split=None if split is None else split.value, threshold=threshold,
                                   fmr=fmr, photo=photo, exclude=exclude or (), options=run)
    res.save(out, raw=raw_csv)
    common.print_rows(f"cluster evaluation on {res.metrics['data']} with {m.path.name}", res.summary_rows())
    common.wrote(out, " (report)")


app.command("cluster")(_cluster)
