"""``facecli classify``: male/female for every face in a folder, one CSV row per face."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli import common
from facecli.options import PART_SIZE, RunOptions


@common.with_run_options
def classify_cmd(
    inputs: Annotated[list[str], typer.Argument(
        metavar="INPUT...", help="Folders (scanned recursively for jpg, jpeg, png, bmp, webp, tif), image files, "
                                 "or - to read newline-separated paths from standard input.")],
    out: common.OutOpt = Path("results.csv"),
    model: common.ModelOpt = None,
    threshold: common.ThresholdOpt = None,
    frame: common.FrameOpt = True,
    raw_csv: common.RawCsvOpt = False,
    resume: common.ResumeOpt = False,
    part_size: common.PartSizeOpt = PART_SIZE,
    engine: common.EngineOpt = common.Engine.local,
    address: common.AddressOpt = None,
    *,
    run: RunOptions,
) -> None:
    """Classify every image of the INPUTs as male or female and write one row per face (path, face, label,
    p_female, evidence, face_status, restored, box, landmarks, error) to --out, as the run goes."""
    from facecli.api import classify_images
    from facecli.card import resolve_threshold

    run = common.batch_options(run, engine, address)
    common.check_out(out, inputs)
    m = common.load(model, "gender", run, threshold=threshold)
    thr, source = resolve_threshold(m.card, threshold)
    common.console().print(f"threshold {thr:.4f} ({source})")
    with common.progress(run, "classify") as run:
        res = classify_images(list(inputs), m, threshold=threshold, frame=frame, out=out, resume=resume,
                              raw=raw_csv, part_size=part_size, options=run)
    common.print_rows(f"classify summary: {' '.join(map(str, inputs))}", res.summary_rows())
    common.wrote(out)
    if res.all_failed:
        common.console().print(f"[red]every input failed[/]: see the error column of {out}")
        raise typer.Exit(1)
