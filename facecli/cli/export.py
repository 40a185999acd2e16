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


RunDir = Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Run folder written by 'facecli train'.")]
OnnxOut = Annotated[Path, typer.Option(dir_okay=False, help="ONNX file to write.")]


def _command(task: str, default_out: str, doc: str):
    def command(run_dir: RunDir, out: OnnxOut = Path(default_out)) -> None:
        _export(task, run_dir, out)

    command.__doc__ = doc
    return command


app.command("gender")(_command("gender", "gender.onnx", "Export a gender run to ONNX (dynamic batch; outputs "
                                                        "P(female); model card in its metadata)."))
app.command("identity")(_command("identity", "embedder.onnx", "Export an identity run to ONNX (dynamic batch; outputs "
                                                              "L2-normalised embeddings; model card in its metadata)."))
