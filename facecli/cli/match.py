"""``facecli match`` and ``facecli calibrate``: recognise probes against a gallery, and tune its threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli import common
from facecli.gallery_store import LOCK_TIMEOUT
from facecli.options import Layout, Objective, Probes, RunOptions


@common.with_run_options
@common.with_batch_options
def match_cmd(
    probe_inputs: Annotated[list[str], typer.Argument(
        metavar="PROBES...", help="An identity-layout folder (ROOT/<identity>/distortion/: scored), any folders "
                                  "of images, image files, or - for newline-separated paths on standard input.")],
    gallery: common.GalleryOpt = Path("gallery"),
    threshold: common.ThresholdOpt = None,
    fpir: common.FpirOpt = None,
    out: common.OutOpt = Path("matches.csv"),
    report: Annotated[Path | None, typer.Option(file_okay=False, help="Report folder (metrics JSON, per-distortion "
                                                                      "CSV) when ground truth is known. Default: "
                                                                      "<out stem>_report next to --out.")] = None,
    plots: Annotated[bool, typer.Option(help="Also draw the similarity histogram and ROC PNGs in the report "
                                             "(about 2 s more).")] = False,
    probes: common.ProbesOpt = Probes.distorted,
    layout: Annotated[Layout, typer.Option(help="auto (the identity layout when PROBES is one folder that has "
                                                "<identity>/distortion/ folders, or identity folders with --probes "
                                                "clean|all), identity, or plain (any images, no ground "
                                                "truth).")] = Layout.auto,
    top_k: Annotated[int, typer.Option(min=1, max=1000, help="Nearest identities listed per probe.")] = 5,
    model: Annotated[Path | None, typer.Option("--model", "-m", exists=True, dir_okay=False,
                                               help="ONNX model file. Default: the model that built the gallery.")]
    = None,
    *,
    run: RunOptions,
    batch: common.BatchArgs,
) -> None:
    """Match probe images against a gallery; with ground truth, print and save the full metric report."""
    from facecli.api import load_gallery, match_probes
    from facecli.report import print_identity_report

    run = batch.options(run)
    common.check_out(out, probe_inputs)
    g = load_gallery(gallery)
    m = common.load(model, "identity", run, gallery=g, threshold=threshold)
    with common.progress(run, "match") as run:
        res = match_probes(list(probe_inputs), g, m, threshold=threshold, fpir=fpir, top_k=top_k,
                           which=probes.value, layout=layout.value, out=out, resume=batch.resume, raw=batch.raw,
                           report=report, plots=plots, part_size=batch.part_size, options=run)
    c = common.console()
    for line in res.warnings:
        c.print(line)
    common.print_rows("match summary", res.summary_rows())
    shown = " ".join(map(str, probe_inputs))
    if res.result is not None:
        print_identity_report(c, res.result, f"match {shown} against {gallery}")
        if res.note:
            c.print(res.note)
        common.wrote(out, f" and report in {res.report_dir.resolve()}")
    else:
        common.wrote(out, " (no ground truth: no metrics)")
    if res.all_failed:
        c.print(f"[red]every input failed[/]: see the error column of {out}")
        raise typer.Exit(1)


@common.with_run_options
def calibrate_cmd(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Labelled identity-layout folder whose identities are in the gallery "
                                              "(e.g. the gallery's own folder: its distorted images).")],
    gallery: common.GalleryOpt = Path("gallery"),
    objective: Annotated[Objective, typer.Option(help="f1 (maximum verification F1) or far (target false accept "
                                                      "rate).")] = Objective.f1,
    far: Annotated[float, typer.Option(min=0.0, max=1.0, help="Target false accept rate for --objective far.")] = 1e-3,
    probes: common.ProbesOpt = Probes.distorted,
    model: common.ModelOpt = None,
    lock_timeout: common.LockTimeoutOpt = LOCK_TIMEOUT,
    *,
    run: RunOptions,
) -> None:
    """Choose the match threshold on a labelled folder and store it in the gallery."""
    from facecli.api import calibrate_threshold, load_gallery

    m = common.load(model, "identity", run, gallery=load_gallery(gallery))
    with common.progress(run, "calibrate") as run:
        res = calibrate_threshold(data, gallery, m, objective=objective.value, far=far, which=probes.value,
                                  lock_timeout=lock_timeout, options=run)
    common.console().print(f"threshold {res['threshold']:.4f} ({res['source']}); at it: FAR {res['far']:.2e}, "
                    f"TAR {res['tar']:.4f}, verification F1 {res['f1']:.4f} "
                    f"({res['genuine']} genuine, {res['impostor']} impostor pairs); stored in {gallery.resolve()}")


