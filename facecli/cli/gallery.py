"""``facecli gallery build|add|rebuild|info``: galleries of identity photos for ``match``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.common import GalleryOpt, LockTimeoutOpt, ModelOpt, console, load, print_rows, progress, with_run_options
from facecli.gallery_store import LOCK_TIMEOUT
from facecli.options import RunOptions

app = typer.Typer(help="Build, extend and inspect galleries of identity photos.", no_args_is_help=True)

Distorted = Annotated[bool, typer.Option("--include-distorted", help="Also embed the distortion/ images.")]


def _report(built, path: Path) -> None:
    c = console()
    print_rows(f"gallery {path}", built.summary_rows())
    rep = built.report
    for p, e in list(rep.failures.items())[:20]:
        c.print(f"  failed: {p}: {e}")
    if rep.skipped_identities:
        more = " ..." if len(rep.skipped_identities) > 20 else ""
        c.print(f"  skipped: {', '.join(rep.skipped_identities[:20])}{more}")
    c.print(f"wrote gallery {path.resolve()}")


@app.command("build")
@with_run_options
def gallery_build_cmd(
    root: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Identity folders: ROOT/<identity>/*.jpg (clean images).")],
    gallery: GalleryOpt = Path("gallery"), model: ModelOpt = None,
    per_image: Annotated[bool, typer.Option("--per-image/--templates", help="Keep one vector per photo and score an "
                                                                           "identity by its best photo (default), "
                                                                           "or one template (mean embedding) per "
                                                                           "identity.")] = True,
    include_distorted: Distorted = False,
    photo: Annotated[bool, typer.Option("--photo/--no-photo", help="Also keep photo evidence of every photo (the "
                                                                   "photo matcher's vector and a 64 px thumbnail, "
                                                                   "about 6 KB each), so that degraded copies of "
                                                                   "gallery photos are recognised even where the "
                                                                   "face is gone (default).")] = True,
    lock_timeout: LockTimeoutOpt = LOCK_TIMEOUT,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a gallery that already exists at --gallery "
                                                            "(without it, that is refused: 'gallery add' adds to "
                                                            "one).")] = False,
    *,
    run: RunOptions,
) -> None:
    """Build a gallery (FAISS inner-product index + JSON metadata) from clean identity photos."""
    from facecli.api import build_gallery, check_new_gallery

    check_new_gallery(gallery, root, replace)  # before any model loads
    m = load(model, "identity", run)
    with progress(run, "embed") as run:
        built = build_gallery(root, m, per_image=per_image, include_distorted=include_distorted, photo=photo,
                              options=run)
    check_new_gallery(gallery, root, replace)  # once more: another run may have made it meanwhile
    built.save(gallery, lock_timeout)
    _report(built, gallery)


@app.command("add")
@with_run_options
def gallery_add_cmd(
    root: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="Identity folders to add; identities already present are replaced.")],
    gallery: GalleryOpt = Path("gallery"),
    model: ModelOpt = None,
    include_distorted: Distorted = False,
    lock_timeout: LockTimeoutOpt = LOCK_TIMEOUT,
    *,
    run: RunOptions,
) -> None:
    """Add or replace identities in a gallery without re-embedding the others (safe to run several at once).
    Without --model, the model that built the gallery embeds them."""
    from facecli.api import add_to_gallery, load_gallery

    m = load(model, "identity", run, gallery=load_gallery(gallery))  # a bad gallery fails before the model loads
    with progress(run, "embed") as run:
        built = add_to_gallery(gallery, root, m, include_distorted=include_distorted,
                               lock_timeout=lock_timeout, options=run)
    console().print(f"added {built.added} and replaced {built.replaced} identities")
    _report(built, gallery)


@app.command("rebuild")
@with_run_options
def gallery_rebuild_cmd(
    gallery: GalleryOpt = Path("gallery"),
    model: ModelOpt = None,
    lock_timeout: LockTimeoutOpt = LOCK_TIMEOUT,
    *,
    run: RunOptions,
) -> None:
    """Embed a gallery again from the photo folders it was built and added from, with the current model: what a
    new model version asks for (a gallery built with the old one is refused until then)."""
    from facecli.api import load_gallery, rebuild_gallery

    old = load_gallery(gallery)  # a bad gallery fails before the model loads
    calibrated = bool(old.meta.get("threshold_calibrated"))
    with progress(run, "embed") as run:
        built = rebuild_gallery(gallery, model, lock_timeout=lock_timeout, options=run)
    if calibrated:
        console().print("note: the threshold calibrated for the old model was dropped; run 'facecli calibrate' "
                        "again to tune one for this model")
    _report(built, gallery)


@app.command("info")
def gallery_info_cmd(
    folder: Annotated[Path | None, typer.Argument(file_okay=False, show_default=False,
                                                  help="Gallery folder (or give it as -g/--gallery).")] = None,
    gallery: GalleryOpt = Path("gallery"),
) -> None:
    """Print what a gallery holds: identities, images, model, preprocessing, threshold, dates, and the operating
    point match takes by default (threshold, its source, FMR and share of strangers accepted)."""
    from facecli.api import load_gallery, model_for_gallery
    from facecli.errors import FacecliError
    from facecli.recognise import default_decision
    from facecli.summary import gallery_info_rows

    gallery = folder if folder is not None else gallery
    g = load_gallery(gallery)
    try:
        decision = default_decision(model_for_gallery(g, device="cpu"), g).rows()
    except FacecliError as exc:  # its model is gone or changed: say so, and show the rest
        decision = [("unknown", str(exc))]
    print_rows(f"gallery {gallery}", gallery_info_rows(g, decision), stdout=True)
