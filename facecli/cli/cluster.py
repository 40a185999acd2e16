"""``facecli cluster``: group every face in a folder by person, without names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli import common
from facecli.options import RunOptions


@common.with_run_options
@common.with_batch_options
def cluster_cmd(
    inputs: common.InputsArg,
    out: common.OutOpt = Path("clusters.csv"),
    model: common.ModelOpt = None,
    threshold: common.LinkThresholdOpt = None,
    fmr: common.LinkFmrOpt = None,
    gallery: Annotated[Path | None, typer.Option("--gallery", "-g", file_okay=False, exists=True, help=(
        "Gallery folder: a cluster whose faces it recognises (most of them, as match would accept them) takes "
        "that identity's name; the others stay person_0001, ...."))] = None,
    fpir: common.FpirOpt = None,
    photo: common.ClusterPhotoOpt = True,
    report: Annotated[Path | None, typer.Option(file_okay=False, help=(
        "Also write an HTML page there (index.html, self-contained): one row of face thumbnails per cluster, "
        "largest first, opened in a browser from disk."))] = None,
    link_to: Annotated[Path | None, typer.Option(file_okay=False, help=(
        "Also make this folder (it must not exist): one subfolder per cluster (0001_person_0001, ..., "
        "singletons) of symbolic links to its photos."))] = None,
    *,
    run: RunOptions,
    batch: common.BatchArgs,
) -> None:
    """Group every face of the INPUTs by person and write one row per face (path, face, cluster, name,
    cluster_size, confidence, evidence, face_status, restored, box, error) to --out. Faces are embedded in
    durable parts (--resume continues a killed run); grouping runs once at the end. --report and --link-to
    show the clusters as a web page and as folders."""
    from facecli.api import cluster_faces, load_gallery

    run = batch.options(run)
    common.check_out(out, inputs)
    _check_views(report, link_to)
    if fpir is not None and gallery is None:
        raise typer.BadParameter("--fpir sets how clusters are named from a gallery; add --gallery")
    m = common.load(model, "identity", run, threshold=threshold)
    g = load_gallery(gallery) if gallery is not None else None
    with common.progress(run, "embed") as run:
        res = cluster_faces(list(inputs), m, threshold=threshold, fmr=fmr, gallery=g, fpir=fpir, photo=photo,
                            out=out, resume=batch.resume, raw=batch.raw, part_size=batch.part_size,
                            options=run)
    common.print_rows(f"cluster summary: {' '.join(map(str, inputs))}", res.summary_rows())
    common.wrote(out)
    _write_views(res.table, report, link_to, list(inputs))
    if res.all_failed:
        common.console().print(f"[red]every input failed[/]: see the error column of {out}")
        raise typer.Exit(1)


def _check_views(report: Path | None, link_to: Path | None) -> None:
    """Refuse, before any model loads, a --report folder that cannot be written or a --link-to that exists."""
    if report is not None:
        from facecli.atomic import check_writable

        check_writable(report, "--report")
    if link_to is not None:
        from facecli.cluster_links import check_link_folder

        check_link_folder(link_to)


def _write_views(table, report: Path | None, link_to: Path | None, inputs: list[str]) -> None:
    """The clusters as a web page (--report) and as folders of links (--link-to)."""
    if report is not None:
        from facecli.cluster_report import write_report

        common.wrote(write_report(table, report, inputs), " (report)")
    if link_to is not None:
        from facecli.cluster_links import write_links

        folder, links, missing = write_links(table, link_to, inputs)
        common.wrote(folder, f" ({links} links" + (f"; {missing} rows whose file was not found" if missing else "") + ")")
