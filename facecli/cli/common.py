"""What every command module shares: option types (the choice sets of :mod:`facecli.options`), the run
options every model-running command takes (:func:`with_run_options`), the console, progress bars, and the
lines every command prints (model used, device, summary table, where it wrote)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from facecli.errors import FacecliError
from facecli.options import PART_SIZE, Detect, Device, Engine, Probes, Restore, RunOptions, Split


def value(choice: Any) -> Any:
    """The plain string of an Enum choice; anything else (None, numbers) as it is."""
    return str(choice.value) if isinstance(choice, Enum) else choice


InputsArg = Annotated[list[str], typer.Argument(
    metavar="INPUT...", help="Folders (scanned recursively for jpg, jpeg, png, bmp, webp, tif), image files, or - to "
                             "read newline-separated paths from standard input.")]
ModelOpt = Annotated[Path | None, typer.Option("--model", "-m", exists=True, dir_okay=False,
                                               help="ONNX model file from 'facecli export'. "
                                                    "Default: the shipped model.")]
BatchOpt = Annotated[int, typer.Option(min=1, max=4096, help="Images per inference batch.")]
DetectOpt = Annotated[Detect | None, typer.Option(
    help="Face detection: auto (MTCNN with five landmarks; faces are aligned as the model was trained; "
         "face_status says detected, fallback or not_found) or none (centred crop). "
         "Default: what the model was trained with.")]
RestoreOpt = Annotated[Restore | None, typer.Option(
    help="Restoration before detection: auto (remove impulse noise or rain streaks where the image shows them; "
         "clean images are untouched; the restored column says what was done) or none. Default: the model's "
         "record (auto for the shipped models).")]
DeviceOpt = Annotated[Device, typer.Option(help="Inference device: auto (CUDA when usable, else CPU), cuda "
                                                "(error when CUDA is not usable) or cpu.")]
def _within(ok: Callable[[float], bool], where: str) -> Callable[[float | None], float | None]:
    """A Typer callback that refuses, before any work, a number that is not finite or fails ``ok``."""

    def check(value: float | None) -> float | None:
        import math

        if value is not None and not (math.isfinite(value) and ok(value)):
            raise typer.BadParameter(f"must lie in {where}, not {value}")
        return value

    return check


# a threshold no model's score can take (the model's card narrows it per task once it is loaded)
_score_range = _within(lambda v: -1.0 <= v <= 1.0, "[0, 1] for gender or [-1, 1] for identity")


ThresholdOpt = Annotated[float | None, typer.Option(
    callback=_score_range, help="Decision threshold as a raw score in [0, 1]: P(female) for gender; for identity "
                                "the model's score (the similarity column). Default: the model's, tuned on "
                                "validation data (gender); from --fmr (verify) or --fpir (match).")]


_rate = _within(lambda v: 0.0 < v < 1.0, "(0, 1)")


FpirOpt = Annotated[float | None, typer.Option(
    callback=_rate, help="Share of strangers (people not in the gallery) to accept, e.g. 0.01: the threshold follows "
                         "from the model's false-match curve and the gallery's size (a stranger is compared with "
                         "every photo). Default 0.01, unless the gallery has a calibrated threshold.")]
FmrOpt = Annotated[float | None, typer.Option(
    callback=_rate, help="Share of different-person pairs to accept (false-match rate of one comparison), e.g. "
                         "0.001: the threshold follows from the model's false-match curve. Default 0.001.")]
LinkThresholdOpt = Annotated[float | None, typer.Option(
    min=0.0, max=1.0, help="Linkage threshold as a raw score on the model's scale: two groups join while the average "
                           "score of their faces reaches it. Default: from --fmr.")]
LinkFmrOpt = Annotated[float | None, typer.Option(
    callback=_rate, help="False-match rate of one comparison at the linkage threshold (the model's false-match "
                         "curve): lower splits more, higher merges more. Default 0.0008.")]
ClusterPhotoOpt = Annotated[bool, typer.Option("--photo/--no-photo", help=(
    "Join a washed-out face (sun glare) to the cluster of the photo it is a degraded copy of, and keep a photo's "
    "degraded copies together (evidence photo); without it such faces stay singletons (default: on)."))]
EvalPhotoOpt = Annotated[bool, typer.Option("--photo/--no-photo", help=(
    "Weigh photo evidence (is a probe a degraded copy of a gallery photo?) beside face evidence, as a gallery "
    "built with it does in match (default: on)."))]
FrameOpt = Annotated[bool, typer.Option("--frame/--no-frame", help=(
    "Where sun glare washed a face out (face_status fallback), fuse in the whole frame's gender evidence (hair, "
    "outline, clothes); evidence says face+frame (default)."))]
GalleryOpt = Annotated[Path, typer.Option("--gallery", "-g", file_okay=False,
                                          help="Gallery folder (gallery.json and the data files it names).")]
RawCsvOpt = Annotated[bool, typer.Option(
    "--raw-csv", help="Write text cells as they are. By default a cell that would start a spreadsheet formula "
                      "(=, +, -, @, tab, CR: a file or identity name such as =HYPERLINK(...)) gets a leading '.")]
OutOpt = Annotated[Path, typer.Option(dir_okay=False, help="Results file (a file, not a folder), by extension: "
                                                          ".csv, .parquet or .jsonl. Rows are written in durable "
                                                          "parts while the run goes (in <out>.partial/) and joined "
                                                          "at the end.")]
PartSizeOpt = Annotated[int, typer.Option(min=1, max=1_000_000, help="Inputs per durable part of the output: a kill "
                                                                    "loses at most the part in flight.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run (killed, Ctrl-C) into the same "
                                                          "--out: only the inputs it had not finished are processed.")]
EngineOpt = Annotated[Engine, typer.Option(help="local (this process) or ray (Ray Data actors; pip install "
                                                "'facecli\\[ray]'; starts a local Ray instance without --address).")]
AddressOpt = Annotated[str | None, typer.Option(help="Ray cluster address for --engine ray (e.g. 10.0.0.1:6379, or "
                                                     "auto for the cluster this machine belongs to).")]
LockTimeoutOpt = Annotated[float, typer.Option(
    "--lock-timeout", min=0.0, max=86400.0,
    help="Seconds to wait for another process writing the same gallery before giving up (exit 2). Readers "
         "(match, gallery info) never wait: they read the last version written.")]
ProbesOpt = Annotated[Probes, typer.Option("--probes", help="Identity layout: which images are probes: distorted "
                                                            "(distortion/), clean or all.")]
SplitOpt = Annotated[Split | None, typer.Option(help="Which split of a Task folder to use. Default: val/; a folder "
                                                     "with train/ but no val/ needs --split train, on purpose.")]


# the run options every model-running command takes: RunOptions field -> (Typer annotation, default)
RUN_OPTIONS: dict[str, tuple[Any, Any]] = {
    "detect": (DetectOpt, None),
    "restore": (RestoreOpt, None),
    "batch_size": (BatchOpt, 64),
    "device": (DeviceOpt, Device.auto),
    "threads": (Annotated[int, typer.Option(min=0, max=256, help="ONNX Runtime threads per model (0: one per "
                                                                 "core).")], 0),
    "workers": (Annotated[int | None, typer.Option(min=1, max=64, help="Decoding threads (decode, restore, "
                                                                       "detect). Default: one per core, at most "
                                                                       "8.")], None),
}


def add_options(options: dict[str, tuple[Any, Any]], into: str, collect: Callable[[dict[str, Any]], Any]):
    """A decorator giving a command the Typer ``options`` (name -> (annotation, default)); the command receives
    them as one value, ``into=collect({name: plain value})``. Options shared by commands are declared once."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(command, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != into]
        extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                 for name, (annotation, default) in options.items()]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            collected = collect({name: value(kwargs.pop(name)) for name in options})
            return command(**kwargs, **{into: collected})

        del wrapper.__wrapped__  # Typer reads the signature below, not the command's own
        wrapper.__signature__ = sig.replace(parameters=own + extra)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
        return wrapper

    return decorate


with_run_options = add_options(RUN_OPTIONS, "run", lambda kw: RunOptions.of(**kw))
with_run_options.__doc__ = "Give a command the options of RUN_OPTIONS; it receives them as one ``run`` (RunOptions)."


@dataclasses.dataclass(frozen=True)
class BatchArgs:
    """What a batch command's --raw-csv, --resume, --part-size, --engine and --address say (BATCH_OPTIONS)."""

    raw: bool = False
    resume: bool = False
    part_size: int = PART_SIZE
    engine: str = "local"
    address: str | None = None

    def options(self, run: RunOptions) -> RunOptions:
        """``run`` with the engine and its address; --address without --engine ray is refused, and a Ray run
        without Ray installed is refused before any model loads."""
        if self.address is not None and self.engine != "ray":
            raise FacecliError("--address is the Ray cluster for --engine ray; add --engine ray")
        if self.engine == "ray":
            from facecli.engines import require_ray

            require_ray()
        return RunOptions.of(run, engine=self.engine, address=self.address)


BATCH_OPTIONS: dict[str, tuple[Any, Any]] = {
    "raw_csv": (RawCsvOpt, False),
    "resume": (ResumeOpt, False),
    "part_size": (PartSizeOpt, PART_SIZE),
    "engine": (EngineOpt, Engine.local),
    "address": (AddressOpt, None),
}
with_batch_options = add_options(BATCH_OPTIONS, "batch", lambda kw: BatchArgs(
    kw["raw_csv"], kw["resume"], kw["part_size"], kw["engine"], kw["address"]))
with_batch_options.__doc__ = "Give a command the options of BATCH_OPTIONS; it receives them as one ``batch`` (BatchArgs)."


@contextlib.contextmanager
def progress(run: RunOptions, what: str) -> Iterator[RunOptions]:
    """A rich progress bar (on stderr) while the block runs; yields ``run`` reporting to it."""
    bar, on_total, on_progress = progress_callbacks(what)
    started = []

    def start() -> None:  # the bar appears with the first count: a run refused before any work draws none
        if not started:
            bar.start()
            started.append(True)

    try:
        yield dataclasses.replace(run, on_total=lambda n: (start(), on_total(n)),
                                  on_progress=lambda n: (start(), on_progress(n)))
    finally:
        if started:
            bar.stop()


def console():
    from facecli.report import console as _console

    return _console()


def _rate_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        """Images per second."""

        def render(self, task) -> Text:
            return Text(f"{task.speed:.1f} img/s" if task.speed else "", style="progress.data.speed")

    return Rate


def RateColumn():  # noqa: N802 - reads as the rich column it makes
    return _rate_column()()


def progress_callbacks(what: str):
    """A rich progress bar (on stderr) and its (on_total, on_progress) callbacks, for library functions
    that report a total and then advances."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn(),
                   console=console(), transient=False)
    task = bar.add_task(what, total=0)
    return bar, (lambda n: bar.update(task, total=n)), (lambda n: bar.advance(task, n))


def check_out(out: Path, inputs: Any = ()) -> None:
    """Refuse, before any work, an --out that cannot be written or whose format is unknown."""
    from facecli.atomic import check_output_file
    from facecli.inputs import check_sources
    from facecli.outputs import output_format

    check_sources(list(inputs))
    check_output_file(out, inputs=[i for i in inputs if i and str(i) != "-"])
    output_format(out)


def load(model: Path | None, task: str, run: RunOptions, gallery: Any = None, threshold: float | None = None):
    """Load the model (for ``gallery``: the one that built it, unless ``model`` is given), check a given
    ``--threshold`` against the range of its scores, and say which file (shipped or not) runs on which device."""
    from facecli.api import load_model, model_for_gallery
    from facecli.card import check_threshold
    from facecli.runtime import gpu_hint

    m = load_model(model, task, options=run) if gallery is None else model_for_gallery(gallery, model, options=run)
    check_threshold(m.card.task, threshold, "--threshold")
    if threshold is not None and threshold < 0 and getattr(m.card, "score_scale", None) is not None:
        raise FacecliError(f"--threshold must lie in [0, 1] for {m.path.name}, whose scores are in [0, 1] (the "
                           f"similarity column), not {threshold}")
    console().print(f"model: {m.describe()}")
    hint = gpu_hint() if m.device == "cpu" and run.device != "cpu" else ""
    if hint:
        console().print(f"note: {hint}")
    return m


def print_rows(title: str, rows, stdout: bool = False) -> None:
    """The summary table, on stderr beside the progress bars; ``stdout`` for a command whose table is its answer
    (``gallery info``), so that it pipes into grep."""
    from facecli.report import metric_table

    if stdout:
        from rich.console import Console

        Console(soft_wrap=False).print(metric_table(title, rows))
        return
    console().print(metric_table(title, rows))


def wrote(out: Path, what: str = "") -> None:
    """The last line of a command: where it wrote."""
    console().print(f"wrote {out.resolve()}{what}")


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
