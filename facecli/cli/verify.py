"""``facecli verify A B``: are two photos the same person? Exit status like ``cmp``: 0 same, 1 different,
2 error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.common import FmrOpt, ModelOpt, ThresholdOpt, console, load, print_rows, with_run_options
from facecli.options import RunOptions


@with_run_options
def verify_cmd(
    a: Annotated[Path, typer.Argument(metavar="A", help="The first photo.")],
    b: Annotated[Path, typer.Argument(metavar="B", help="The second photo.")],
    threshold: ThresholdOpt = None,
    fmr: FmrOpt = None,
    model: ModelOpt = None,
    photo: Annotated[bool, typer.Option("--photo/--no-photo", help="Also test whether B is a degraded copy of A "
                                                                   "(photo evidence), as match does (default).")]
    = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (same, similarity, threshold, "
                                                         "threshold_source, fmr, similarity_fmr, evidence, a, b, "
                                                         "face_status_a, face_status_b) on standard output.")] = False,
    *,
    run: RunOptions,
) -> None:
    """Say whether photos A and B show the same person: the similarity, the threshold used and the decision,
    with the evidence. Exit status 0: the same person, 1: different people, 2: an error."""
    from facecli.api import verify

    m = load(model, "identity", run, threshold=threshold)
    v = verify(a, b, m, threshold=threshold, fmr=fmr, photo=photo, options=run)
    if as_json:
        print(json.dumps(v.to_dict()))
    else:
        print_rows(f"verify {a} {b}", v.summary_rows())
        word = "the same person" if v.same else "different people"
        cmp = ">=" if v.same else "<"
        console().print(f"{word}: similarity {v.similarity:.4f} {cmp} threshold {v.threshold:.4f} "
                        f"({v.threshold_source}); evidence {v.evidence}")
    raise typer.Exit(0 if v.same else 1)
