"""Run-wide options and every choice set, each defined once.

:class:`RunOptions` is how a run goes whatever the verb (detection, batch size, device, decoder threads,
progress callbacks). The API validates it once, at its boundary, and passes it down as one value: the
pipeline trusts it. The Enums below are the choice sets: the CLI's Typer options and the API's checks both
read them, so a choice is added in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from facecli.errors import FacecliError
from facecli.face.align import TEMPLATES
from facecli.face.detectors import detector_names
from facecli.restore import RESTORE_MODES

if TYPE_CHECKING:
    from facecli.face.preprocess import Preprocessing
from facecli.validate import check_choice, check_int

Progress = Callable[[int], None] | None
PART_SIZE = 512  # inputs per durable part of a streamed run's output (--part-size; facecli.batch)

# ------------------------------------------------------------------ choice sets


def choice_set(name: str, values: Iterable[str], doc: str) -> type[Enum]:
    """A choice set: a str Enum whose members are ``values`` (Typer shows them; the API checks against them)."""
    enum = Enum(name, {v: v for v in values}, type=str, module=__name__)
    enum.__doc__ = doc
    return enum


Detect = choice_set("Detect", (*detector_names(), "none"),
                    "Face detection: auto (the default detector), a detector's registry name, or none (centred crop).")
Restore = choice_set("Restore", RESTORE_MODES,
                     "Restoration before detection: auto (remove impulse noise or rain streaks where found) or none.")
Device = choice_set("Device", ("auto", "cpu", "cuda"),
                    "Where a model runs: auto (CUDA when usable, else the CPU), cpu or cuda.")
Align = choice_set("Align", ("none", *TEMPLATES), "Alignment template for training (facecli.face.align.TEMPLATES).")
Probes = choice_set("Probes", ("distorted", "clean", "all"), "Which images of an identity-layout folder are probes.")
Layout = choice_set("Layout", ("auto", "identity", "plain"),
                    "How a probe folder is read: auto (identity layout when it has it), identity, or plain images.")
Objective = choice_set("Objective", ("f1", "far"),
                       "What a calibrated threshold optimises: verification F1, or a false accept rate.")
Split = choice_set("Split", ("train", "val"), "Which split of a Task folder to use.")
Engine = choice_set("Engine", ("local", "ray"),
                    "Where a batch runs: local (this process) or ray (Ray Data actors, on a cluster or a local instance).")
Task = choice_set("Task", ("gender", "identity"), "What a model does.")
# training choices
Balance = choice_set("Balance", ("loss", "sampler", "both", "none"),
                     "Gender class imbalance: loss (pos_weight), sampler (weighted sampling), both or none.")
GenderLoss = choice_set("GenderLoss", ("bce", "focal"), "Gender loss.")
Select = choice_set("Select", ("f1", "balanced_accuracy"), "Best-epoch and threshold criterion for gender.")
IdentityLoss = choice_set("IdentityLoss", ("arcface", "triplet"), "Identity loss.")


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
    restore: None runs the model's own setting (the shipped models: "auto"); "auto" assesses every image and
        removes impulse noise or rain streaks before detection (:mod:`facecli.restore`); "none" leaves images
        as decoded.
    workers: decoder threads (None: one per core, at most 8).
    threads: ONNX Runtime intra-op threads per model (0: ONNX Runtime's choice, one per core).
    engine: where a streamed batch runs: "local" (this process) or "ray" (Ray Data actors; :mod:`facecli.engines`).
    address: the Ray cluster to join with engine "ray" (None: start a local Ray instance).
    on_total: called once with the number of inputs when it is known.
    on_progress: called with the number of inputs finished after each model batch.
    """

    detect: str | None = None
    restore: str | None = None
    batch_size: int = 64
    device: str = "auto"
    workers: int | None = None
    threads: int = 0
    engine: str = "local"
    address: str | None = None
    on_total: Progress = None
    on_progress: Progress = None

    def __post_init__(self) -> None:
        for f in ("detect", "restore", "device", "engine"):
            object.__setattr__(self, f, plain(getattr(self, f)))
        check_choice("detect", self.detect, choices(Detect), optional=True)
        check_choice("restore", self.restore, choices(Restore), optional=True)
        check_int("batch_size", self.batch_size, 1, 4096)
        check_choice("device", self.device, choices(Device))
        if self.workers is not None:
            check_int("workers", self.workers, 1, 64)
        check_int("threads", self.threads, 0, 256)
        check_choice("engine", self.engine, choices(Engine))
        if self.address is not None and (not isinstance(self.address, str) or not self.address):
            raise FacecliError(f"address must be a Ray cluster address such as 10.0.0.1:6379, not {self.address!r}")

    @classmethod
    def of(cls, options: RunOptions | None = None, **changes: Any) -> RunOptions:
        """``options`` (default: the defaults) with ``changes`` applied and checked; FacecliError for a name that
        is not a run option."""
        unknown = set(changes) - {f.name for f in fields(cls)}
        if unknown:
            raise FacecliError(f"unknown option {sorted(unknown)[0]!r} (run options: "
                               f"{', '.join(f.name for f in fields(cls))})")
        return replace(options or cls(), **changes)

    def spec_for(self, spec: Preprocessing) -> Preprocessing:
        """A model's preprocessing record with this run's ``detect`` and ``restore`` overrides applied."""
        changes = {k: v for k, v in (("detect", self.detect), ("restore", self.restore)) if v is not None}
        return spec.replace(**changes) if changes else spec

    def total(self, n: int) -> None:
        """Report the number of inputs."""
        if self.on_total:
            self.on_total(n)

    def advance(self, n: int) -> None:
        """Report ``n`` more inputs finished."""
        if self.on_progress:
            self.on_progress(n)
