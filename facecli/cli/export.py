"""``facecli export gender|identity``: a run folder to an ONNX model, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.common import console, require_training_stack

app = typer.Typer(help="Export a run folder to an ONNX model (checked against PyTorch; needs the train extra).",
                  no_args_is_help=True)


def _export(task: str, run_dir: Path, out: Path) -> None:
    require_training_stack()
    from facecli.atomic import check_output_file
    from facecli.training.export import export_run

    check_output_file(out)
    info = export_run(run_dir, out, task=task)
    console().print(f"wrote {task} model {Path(info['out']).resolve()} ({info['bytes'] / 1e6:.1f} MB); "
                    f"max abs diff vs PyTorch {info['max_abs_diff']:.2e}")


@app.command("gender")
def export_gender_cmd(
    run_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                            help="Run folder written by 'facecli train gender'.")],
    out: Annotated[Path, typer.Option(dir_okay=False, help="ONNX file to write.")] = Path("gender.onnx"),
) -> None:
    """Export a gender run to ONNX (dynamic batch; outputs P(female); model card in its metadata)."""
    _export("gender", run_dir, out)


@app.command("identity")
def export_identity_cmd(
    run_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                            help="Run folder written by 'facecli train identity'.")],
    out: Annotated[Path, typer.Option(dir_okay=False, help="ONNX file to write.")] = Path("embedder.onnx"),
) -> None:
    """Export an identity run to ONNX (dynamic batch; outputs L2-normalised embeddings; model card in its
    metadata)."""
    _export("identity", run_dir, out)
