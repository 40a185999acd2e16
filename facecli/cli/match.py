"""``facecli match`` and ``facecli calibrate``: recognise probes against a gallery, and tune its threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.common import (
    GalleryOpt,
    LockTimeoutOpt,
    ModelOpt,
    ProbesOpt,
    RawCsvOpt,
    ThresholdOpt,
    console,
    exit_if_all_failed,
    load,
    print_rows,
    progress,
    with_run_options,
    wrote,
)
from facecli.gallery_store import LOCK_TIMEOUT
from facecli.options import Layout, Objective, Probes, RunOptions


@with_run_options
def match_cmd(
    probes_dir: Annotated[Path, typer.Argument(metavar="PROBES", exists=True, file_okay=False,
                                               help="Identity-layout folder or any folder of images.")],
    gallery: GalleryOpt = Path("gallery"),
    threshold: ThresholdOpt = None,
    out: Annotated[Path, typer.Option(dir_okay=False, help="CSV file of matches to write (a file, not a folder).")]
    = Path("matches.csv"),
    report: Annotated[Path | None, typer.Option(file_okay=False, help="Report folder (metrics JSON, per-distortion "
                                                                      "CSV) when ground truth is known. Default: "
                                                                      "<out stem>_report next to --out.")] = None,
    plots: Annotated[bool, typer.Option(help="Also draw the similarity histogram and ROC PNGs in the report "
                                             "(about 2 s more).")] = False,
    probes: ProbesOpt = Probes.distorted,
    layout: Annotated[Layout, typer.Option(help="auto (identity layout when PROBES holds identity folders), "
                                                "identity, or plain (any images, no ground truth).")] = Layout.auto,
    top_k: Annotated[int, typer.Option(min=1, max=1000, help="Nearest identities listed per probe.")] = 5,
    model: Annotated[Path | None, typer.Option("--model", "-m", exists=True, dir_okay=False,
                                               help="ONNX model file. Default: the model that built the gallery.")]
    = None,
    raw_csv: RawCsvOpt = False,
    *,
    run: RunOptions,
) -> None:
    """Match probe images against a gallery; with ground truth, print and save the full metric report."""
    from facecli.api import load_gallery, match_probes
    from facecli.atomic import check_output_file
    from facecli.report import print_identity_report
    from facecli.summary import open_set_note

    check_output_file(out, inputs=[probes_dir])
    g = load_gallery(gallery)
    m = load(model, "identity", run, gallery=g, threshold=threshold)
    with progress(run, "match") as run:
        res = match_probes(probes_dir, g, m, threshold=threshold, top_k=top_k, which=probes.value,
                           layout=layout.value, options=run)
    rdir = res.save(out, report, plots=plots, extra={"probes_folder": str(probes_dir), "gallery": str(gallery)},
                    raw=raw_csv)
    c = console()
    for line in res.warnings:
        c.print(line)
    print_rows("match summary", res.summary_rows())
    if res.result is not None:
        print_identity_report(c, res.result, f"match {probes_dir} against {gallery}")
        note = open_set_note(res.result.metrics)
        if note:
            c.print(note)
        wrote(out, f" and report in {rdir.resolve()}")
    else:
        wrote(out, " (no ground truth: no metrics)")
    exit_if_all_failed(res.table, out)


@with_run_options
def calibrate_cmd(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Labelled identity-layout folder whose identities are in the gallery "
                                              "(e.g. the gallery's own folder: its distorted images).")],
    gallery: GalleryOpt = Path("gallery"),
    objective: Annotated[Objective, typer.Option(help="f1 (maximum verification F1) or far (target false accept "
                                                      "rate).")] = Objective.f1,
    far: Annotated[float, typer.Option(min=0.0, max=1.0, help="Target false accept rate for --objective far.")] = 1e-3,
    probes: ProbesOpt = Probes.distorted,
    model: ModelOpt = None,
    lock_timeout: LockTimeoutOpt = LOCK_TIMEOUT,
    *,
    run: RunOptions,
) -> None:
    """Choose the match threshold on a labelled folder and store it in the gallery."""
    from facecli.api import calibrate_threshold, load_gallery

    m = load(model, "identity", run, gallery=load_gallery(gallery))
    with progress(run, "calibrate") as run:
        res = calibrate_threshold(data, gallery, m, objective=objective.value, far=far, which=probes.value,
                                  lock_timeout=lock_timeout, options=run)
    console().print(f"threshold {res['threshold']:.4f} ({res['source']}); at it: FAR {res['far']:.2e}, "
                    f"TAR {res['tar']:.4f}, verification F1 {res['f1']:.4f} "
                    f"({res['genuine']} genuine, {res['impostor']} impostor pairs); stored in {gallery.resolve()}")


