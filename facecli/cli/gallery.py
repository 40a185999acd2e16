"""``facecli gallery build|add|info``: galleries of identity photos for ``match``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.common import (
    BatchOpt,
    DetectOpt,
    Device,
    DeviceOpt,
    GalleryOpt,
    ModelOpt,
    console,
    load,
    print_rows,
    progress_callbacks,
    value,
)

app = typer.Typer(help="Build, extend and inspect galleries of identity photos.", no_args_is_help=True)

Distorted = typer.Option("--include-distorted", help="Also embed the distortion/ images.")


def _report(rep, path: Path, g) -> None:
    from facecli.summary import gallery_rows

    c = console()
    print_rows(f"gallery {path}", gallery_rows(rep, g))
    for p, e in list(rep.failures.items())[:20]:
        c.print(f"  failed: {p}: {e}")
    if rep.skipped_identities:
        more = " ..." if len(rep.skipped_identities) > 20 else ""
        c.print(f"  skipped: {', '.join(rep.skipped_identities[:20])}{more}")


@app.command("build")
def gallery_build_cmd(
    root: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Identity folders: ROOT/<identity>/*.jpg (clean images).")],
    gallery: GalleryOpt = Path("gallery"),
    model: ModelOpt = None,
    per_image: Annotated[bool, typer.Option("--per-image/--templates", help="Keep one vector per photo and score an "
                                                                           "identity by its best photo (default), "
                                                                           "or one template (mean embedding) per "
                                                                           "identity.")] = True,
    include_distorted: Annotated[bool, Distorted] = False,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = Device.auto,
) -> None:
    """Build a gallery (FAISS inner-product index + JSON metadata) from clean identity photos."""
    from facecli.api import build_gallery

    m = load(model, "identity", device)
    bar, on_total, on_progress = progress_callbacks("embed")
    with bar:
        g, rep = build_gallery(root, m, out=gallery, per_image=per_image, include_distorted=include_distorted,
                               detect=value(detect), batch_size=batch_size, on_total=on_total,
                               on_progress=on_progress)
    _report(rep, gallery, g)
    console().print(f"wrote gallery {gallery.resolve()}")


@app.command("add")
def gallery_add_cmd(
    root: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Identity folders to add; identities already present are replaced.")],
    gallery: GalleryOpt = Path("gallery"),
    model: ModelOpt = None,
    include_distorted: Annotated[bool, Distorted] = False,
    detect: DetectOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = Device.auto,
) -> None:
    """Add or replace identities in a gallery without re-embedding the others (safe to run several at once)."""
    from facecli.api import add_to_gallery, load_gallery

    load_gallery(gallery)  # a missing or corrupt gallery fails before the model loads
    m = load(model, "identity", device)
    bar, on_total, on_progress = progress_callbacks("embed")
    with bar:
        g, added, replaced, rep = add_to_gallery(gallery, root, m, include_distorted=include_distorted,
                                                 detect=value(detect), batch_size=batch_size, on_total=on_total,
                                                 on_progress=on_progress)
    console().print(f"added {added} and replaced {replaced} identities")
    _report(rep, gallery, g)
    console().print(f"wrote gallery {gallery.resolve()}")


@app.command("info")
def gallery_info_cmd(
    gallery: Annotated[Path, typer.Argument(file_okay=False, help="Gallery folder.")] = Path("gallery"),
) -> None:
    """Print what a gallery holds: identities, images, model, preprocessing, threshold, dates."""
    from facecli.api import load_gallery
    from facecli.summary import gallery_info_rows

    print_rows(f"gallery {gallery}", gallery_info_rows(load_gallery(gallery)))
