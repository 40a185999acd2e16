"""``facecli export gender|identity``: a run folder to an ONNX model, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from facecli.cli.common import console, require_training_stack
from facecli.errors import FacecliError

app = typer.Typer(help="Export a run folder to an ONNX model (checked against PyTorch), or quantise a model to "
                       "int8 for the CPU (needs the train extra).",
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


@app.command("int8")
def int8_cmd(
    model: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="facecli ONNX model to quantise.")],
    calibration: Annotated[list[Path], typer.Option(exists=True, help="Calibration images: folders (searched "
                                                    "recursively) or files, like the model's own inputs; a few "
                                                    "hundred are plenty. Repeat the option for more.")],
    out: OnnxOut = Path("model-int8.onnx"),
    describe: Annotated[str, typer.Option("--describe", help="The calibration data in words, for the model "
                                          "card (data, split, N). Default: the image count.")] = "",
    limit: Annotated[int, typer.Option(min=1, help="Use at most this many calibration images (an even "
                                       "sample in path order).")] = 512,
    min_cosine: Annotated[float, typer.Option(min=0.0, max=1.0, help="Identity models: the least mean cosine "
                                              "of the copy's embeddings to the source's on the calibration "
                                              "faces.")] = 0.999,
) -> None:
    """Quantise a model to int8 for the CPU (ONNX Runtime static quantisation, QDQ), calibrated on the crops
    its own preprocessing cuts from the calibration images; checked against the source before it is written."""
    require_training_stack()
    from facecli.atomic import check_output_file
    from facecli.scan import scan_images
    from facecli.training.quantize import quantize_model

    check_output_file(out)
    images: list = []
    for src in calibration:
        images += [p for p in scan_images(src) if isinstance(p, Path)] if src.is_dir() else [src]
    if not images:
        raise FacecliError("no calibration images found")
    if len(images) > limit:
        images = [images[int(i)] for i in np.linspace(0, len(images) - 1, limit)]
    info = quantize_model(model, out, images, calibration=describe, min_cosine=min_cosine)
    how = (f"mean cosine to the source {info['mean_cosine']:.5f} (worst {info['min_cosine']:.4f})"
           if "mean_cosine" in info else
           f"mean P(female) change {info['mean_probability_change']:.4f} (worst {info['max_probability_change']:.3f})")
    console().print(f"wrote int8 model {Path(info['out']).resolve()} ({info['bytes'] / 1e6:.1f} MB, from "
                    f"{info['source_bytes'] / 1e6:.1f} MB); calibrated on {info['images']} images "
                    f"({info['inputs']} inputs); {how}")
