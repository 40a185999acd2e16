"""``facecli classify``: male/female for every face in a folder, one CSV row per face."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli import common
from facecli.options import RunOptions


@common.with_run_options
def classify_cmd(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                           help="Folder scanned recursively for jpg, jpeg, png, bmp, webp, tif.")],
    out: Annotated[Path, typer.Option(dir_okay=False, help="CSV file to write (a file, not a folder): path, face, "
                                                           "label, p_female, evidence, face_status, restored, box, "
                                                           "landmarks, error.")]
    = Path("results.csv"),
    model: common.ModelOpt = None,
    threshold: common.ThresholdOpt = None,
    frame: Annotated[bool, typer.Option("--frame/--no-frame", help="Where sun glare washed a face out (face_status "
                                                                   "fallback), fuse in the whole frame's gender "
                                                                   "evidence (hair, outline, clothes); evidence says "
                                                                   "face+frame (default).")] = True,
    raw_csv: common.RawCsvOpt = False,
    *,
    run: RunOptions,
) -> None:
    """Classify every image under FOLDER as male or female and write a CSV (one row per face)."""
    from facecli.api import classify_images
    from facecli.atomic import check_output_file
    from facecli.card import resolve_threshold

    check_output_file(out, inputs=[folder])
    m = common.load(model, "gender", run, threshold=threshold)
    thr, source = resolve_threshold(m.card, threshold)
    common.console().print(f"threshold {thr:.4f} ({source})")
    with common.progress(run, "classify") as run:
        res = classify_images(folder, m, threshold=threshold, frame=frame, options=run)
    res.save(out, raw=raw_csv)
    common.print_rows(f"classify summary: {folder}", res.summary_rows())
    common.wrote(out)
    common.exit_if_all_failed(res.table, out)
