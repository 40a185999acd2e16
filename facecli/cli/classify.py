"""``facecli classify``: male/female for every face in a folder, one CSV row per face."""

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
    console,
    exit_if_all_failed,
    load,
    print_rows,
    progress_callbacks,
    value,
)


def classify_cmd(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                           help="Folder scanned recursively for jpg, jpeg, png, bmp, webp, tif.")],
    out: Annotated[Path, typer.Option(dir_okay=False, help="CSV file to write (a file, not a folder): path, face, "
                                                           "label, p_female, face_status, box, landmarks, error.")]
    = Path("results.csv"),
    model: ModelOpt = None,
    threshold: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="P(female) threshold. Default: the "
                                                                           "model's validation-tuned one.")] = None,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = Device.auto,
) -> None:
    """Classify every image under FOLDER as male or female and write a CSV (one row per face)."""
    from facecli.api import classify_images
    from facecli.atomic import check_output_file, write_with
    from facecli.card import resolve_threshold
    from facecli.summary import classify_rows

    check_output_file(out)
    m = load(model, "gender", device)
    thr, source = resolve_threshold(m.card, threshold)
    c = console()
    c.print(f"threshold {thr:.4f} ({source})")
    n_images = []
    bar, on_total, on_progress = progress_callbacks("classify")
    with bar:
        df = classify_images(folder, m, threshold=threshold, detect=value(detect), batch_size=batch_size,
                             on_total=lambda n: (n_images.append(n), on_total(n)), on_progress=on_progress)
    write_with(out, lambda tmp: df.to_csv(tmp, index=False))
    print_rows(f"classify summary: {folder}", classify_rows(df, n_images[0], m.card.labels))
    c.print(f"wrote {out.resolve()}")
    exit_if_all_failed(df, out)
