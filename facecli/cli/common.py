"""What every command module shares: option types (choices as Enums, ranges), the console, progress bars,
and the lines every command prints (model used, device, where it wrote)."""

from __future__ import annotations

import importlib
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from facecli.errors import FacecliError


class Detect(str, Enum):
    auto = "auto"
    none = "none"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Align(str, Enum):
    none = "none"
    arcface = "arcface"
    dlib = "dlib"


class Probes(str, Enum):
    distorted = "distorted"
    clean = "clean"
    all = "all"


class Layout(str, Enum):
    auto = "auto"
    identity = "identity"
    plain = "plain"


class Objective(str, Enum):
    f1 = "f1"
    far = "far"


class Split(str, Enum):
    train = "train"
    val = "val"


def value(choice: Enum | None) -> str | None:
    """The plain string of an Enum choice (None stays None)."""
    return None if choice is None else str(choice.value)


ModelOpt = Annotated[Path | None, typer.Option("--model", "-m", exists=True, dir_okay=False,
                                               help="ONNX model file from 'facecli export'. "
                                                    "Default: the shipped model.")]
BatchOpt = Annotated[int, typer.Option(min=1, max=4096, help="Images per inference batch.")]
DetectOpt = Annotated[Detect | None, typer.Option(
    help="Face detection: auto (MTCNN with five landmarks; faces are aligned as the model was trained; "
         "face_status says detected, fallback or not_found) or none (centred crop). "
         "Default: what the model was trained with.")]
DeviceOpt = Annotated[Device, typer.Option(help="Inference device: auto (CUDA when usable, else CPU), cuda "
                                                "(error when CUDA is not usable) or cpu.")]
GalleryOpt = Annotated[Path, typer.Option("--gallery", "-g", file_okay=False,
                                          help="Gallery folder (index.faiss, templates.npy, gallery.json).")]
ProbesOpt = Annotated[Probes, typer.Option("--probes", help="Identity layout: which images are probes: distorted "
                                                            "(distortion/), clean or all.")]
SplitOpt = Annotated[Split | None, typer.Option(help="Which split of a Task folder to use. Default: val/; a folder "
                                                     "with train/ but no val/ needs --split train, on purpose.")]


def console():
    from facecli.report import console as _console

    return _console()


def progress_callbacks(what: str):
    """A rich progress bar (on stderr) and its (on_total, on_progress) callbacks, for library functions
    that report a total and then advances."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console(), transient=False)
    task = bar.add_task(what, total=0)
    return bar, (lambda n: bar.update(task, total=n)), (lambda n: bar.advance(task, n))


def load(model: Path | None, task: str, device: Device):
    """Load the model and say which file (shipped or not) runs on which device."""
    from facecli.api import load_model
    from facecli.runtime import gpu_hint

    m = load_model(model, task, device=device.value)
    console().print(f"model: {m.describe()}")
    hint = gpu_hint() if m.device == "cpu" and device is not Device.cpu else ""
    if hint:
        console().print(f"note: {hint}")
    return m


def print_rows(title: str, rows) -> None:
    from facecli.report import metric_table

    console().print(metric_table(title, rows))


def exit_if_all_failed(table, out: Path) -> None:
    """Exit status 1 when every input failed (the CSV still lists each error); 0 otherwise."""
    from facecli.summary import all_failed

    if all_failed(table):
        console().print(f"[red]every input failed[/]: see the error column of {out}")
        raise typer.Exit(1)


def require_training_stack() -> None:
    """One line saying what to install when the training extra is missing."""
    missing = []
    for name in ("torch", "timm", "albumentations", "onnx", "safetensors"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise FacecliError(f"training and export need the train extra ({', '.join(missing)} missing): "
                           "pip install 'facecli[train]'")
