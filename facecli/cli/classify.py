"""``facecli classify``: male/female for every face in a folder, one CSV row per face."""

from __future__ import annotations

from pathlib import Path

import typer

from facecli.cli import common
from facecli.options import RunOptions


@common.with_run_options
@common.with_batch_options
def classify_cmd(
    inputs: common.InputsArg,
    out: common.OutOpt = Path("results.csv"),
    model: common.ModelOpt = None,
    threshold: common.ThresholdOpt = None,
    frame: common.FrameOpt = True,
    *,
    run: RunOptions,
    batch: common.BatchArgs,
) -> None:
    """Classify every image of the INPUTs as male or female and write one row per face (path, face, label,
    p_female, evidence, face_status, restored, box, landmarks, error) to --out, as the run goes."""
    from facecli.api import classify_images
    from facecli.card import resolve_threshold

    run = batch.options(run)
    common.check_out(out, inputs)
    m = common.load(model, "gender", run, threshold=threshold)
    thr, source = resolve_threshold(m.card, threshold)
    common.console().print(f"threshold {thr:.4f} ({source})")
    with common.progress(run, "classify") as run:
        res = classify_images(list(inputs), m, threshold=threshold, frame=frame, out=out, resume=batch.resume,
                              raw=batch.raw, part_size=batch.part_size, options=run)
    common.print_rows(f"classify summary: {' '.join(map(str, inputs))}", res.summary_rows())
    common.wrote(out)
    if res.all_failed:
        common.console().print(f"[red]every input failed[/]: see the error column of {out}")
        raise typer.Exit(1)
