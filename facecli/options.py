"""Run-wide options and every choice set, each defined once.

:class:`RunOptions` is how a run goes whatever the verb (detection, batch size, device, decoder threads,
progress callbacks). The API validates it once, at its boundary, and passes it down as one value: the
pipeline trusts it. The Enums below are the choice sets: the CLI's Typer options and the API's checks both
read them, so a choice is added in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

from facecli.errors import FacecliError
from facecli.face.align import TEMPLATES
from facecli.face.detectors import detector_names
from facecli.validate import check_choice, check_int

Progress = Callable[[int], None] | None

# ------------------------------------------------------------------ choice sets


Detect = Enum("Detect", {n: n for n in (*detector_names(), "none")}, type=str)
Detect.__doc__ = "Face detection: auto (the default detector), a detector's registry name, or none (centred crop)."


class Device(str, Enum):
    """Where inference runs: auto (CUDA when usable, else the CPU), cpu or cuda."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


Align = Enum("Align", {n: n for n in ("none", *TEMPLATES)}, type=str)
Align.__doc__ = "Alignment template for training: none, or a landmark template of facecli.face.align.TEMPLATES."


class Probes(str, Enum):
    """Which images of an identity-layout folder are probes."""

    distorted = "distorted"
    clean = "clean"
    all = "all"


class Layout(str, Enum):
    """How a probe folder is read: auto (identity layout when it has it), identity, or plain images."""

    auto = "auto"
    identity = "identity"
    plain = "plain"


class Objective(str, Enum):
    """What a calibrated threshold optimises: f1 (verification F1) or far (a false accept rate)."""

    f1 = "f1"
    far = "far"


class Split(str, Enum):
    """Which split of a Task folder to use."""

    train = "train"
    val = "val"


class Task(str, Enum):
    """What a model does."""

    gender = "gender"
    identity = "identity"


def choices(enum: type[Enum]) -> tuple[str, ...]:
    """The plain string values of a choice set."""
    return tuple(str(e.value) for e in enum)


def plain(value: Any) -> Any:
    """An Enum member's string value; anything else as it is."""
    return value.value if isinstance(value, Enum) else value


# ------------------------------------------------------------------ run options


@dataclass(frozen=True)
class RunOptions:
    """How a run goes, whatever the verb.

    detect: None runs the model's own setting (the shipped models detect and align faces); "none" uses the
        centred crop; "auto" or a detector's name detects faces.
    batch_size: images per inference batch (1 to 4096).
    device: "auto" (CUDA when ONNX Runtime can use a GPU, else the CPU), "cuda" (an error when it cannot) or
        "cpu"; used when a model is loaded from a path.
    workers: decoder threads (None: one per core, at most 8).
    on_total: called once with the number of inputs when it is known.
    on_progress: called with the number of inputs finished after each chunk.
    """

    detect: str | None = None
    batch_size: int = 64
    device: str = "auto"
    workers: int | None = None
    on_total: Progress = None
    on_progress: Progress = None

    def __post_init__(self) -> None:
        for f in ("detect", "device"):
            object.__setattr__(self, f, plain(getattr(self, f)))
        check_choice("detect", self.detect, choices(Detect), optional=True)
        check_int("batch_size", self.batch_size, 1, 4096)
        check_choice("device", self.device, choices(Device))
        if self.workers is not None:
            check_int("workers", self.workers, 1, 64)

    @classmethod
    def of(cls, options: RunOptions | None = None, **changes: Any) -> RunOptions:
        """``options`` (default: the defaults) with ``changes`` applied and checked; FacecliError for a name that
        is not a run option."""
        unknown = set(changes) - {f.name for f in fields(cls)}
        if unknown:
            raise FacecliError(f"unknown option {sorted(unknown)[0]!r} (run options: "
                               f"{', '.join(f.name for f in fields(cls))})")
        return replace(options or cls(), **changes)

    def total(self, n: int) -> None:
        """Report the number of inputs."""
        if self.on_total:
            self.on_total(n)

    def advance(self, n: int) -> None:
        """Report ``n`` more inputs finished."""
        if self.on_progress:
            self.on_progress(n)
