"""Loading a facecli ONNX model and running it with ONNX Runtime (CUDA when usable, else CPU)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecli.card import ModelCard, check_task
from facecli.errors import FacecliError
from facecli.face.preprocess import Preprocessing, flip_average
from facecli.options import Device, choices
from facecli.shipped import models_dir

METADATA_KEY = "facecli"
DEFAULT_MODELS = {"gender": "gender.onnx", "identity": "identity.onnx"}


@dataclass
class OnnxModel:
    """A facecli model: an ONNX Runtime session plus the model card stored inside the ONNX file.

    ``card`` (:class:`facecli.card.ModelCard`) holds the task, backbone, preprocessing, threshold, labels
    and embedding size; ``meta`` is its JSON form. ``shipped`` is True for the models that come with
    facecli (``models/``).
    """

    path: Path
    card: ModelCard
    session: Any = field(repr=False)
    sha256: str = ""
    shipped: bool = False

    @property
    def meta(self) -> dict[str, Any]:
        return self.card.to_dict()

    @property
    def task(self) -> str:
        return self.card.task

    @property
    def preprocessing(self) -> Preprocessing:
        return self.card.preprocessing

    @property
    def provider(self) -> str:
        """The execution provider actually in use, e.g. 'CPUExecutionProvider'."""
        return self.session.get_providers()[0]

    @property
    def device(self) -> str:
        """'cuda' or 'cpu': where this model runs."""
        return "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"

    def describe(self) -> str:
        """One line for the user: which file, shipped or not, which backbone, on which device."""
        origin = "shipped" if self.shipped else "user model"
        return f"{self.card.task} model {self.path} ({origin}, {self.card.backbone}) on {self.device} ({self.provider})"

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run the model on a float32 NCHW batch and return its single output (for an identity model whose
        preprocessing says ``flip``, the flip-averaged embedding: :func:`facecli.face.preprocess.flip_average`)."""
        name = self.session.get_inputs()[0].name
        if self.card.task == "identity" and self.card.preprocessing.flip:
            return flip_average(lambda b: self.session.run(None, {name: b})[0], x)
        return self.session.run(None, {name: x})[0]


INT8_SUFFIX = "-int8"  # the shipped int8 copy of models/NAME.onnx is models/NAME-int8.onnx ('facecli export int8')


def shipped_model_path(name: str, device: str = "auto") -> Path:
    """The shipped model file ``name`` (e.g. "identity.onnx") to run on ``device``: its int8 copy when inference
    will run on the CPU and the copy is shipped (about 2.4x faster there, the same answers within the parity
    figures of the model card), else the float file (on a CUDA GPU an int8 QDQ graph runs its convolutions in
    float after dequantising: the float file is the fast one there)."""
    path = models_dir() / name
    if choose_providers(device)[0] == "CPUExecutionProvider":
        q = path.with_name(path.stem + INT8_SUFFIX + path.suffix)
        if q.is_file():
            return q
    return path


def default_model_path(task: str, device: str = "auto") -> Path:
    """The shipped default model for ``task`` in the repository's ``models/`` folder, for ``device``
    (:func:`shipped_model_path`)."""
    return shipped_model_path(DEFAULT_MODELS[task], device)


def is_shipped(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is one of the model files that ship with facecli."""
    try:
        return Path(path).resolve().parent == models_dir().resolve()
    except OSError:
        return False


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file: the model identity a gallery records."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for piece in iter(lambda: fh.read(1 << 20), b""):
            h.update(piece)
    return h.hexdigest()


DEVICES = choices(Device)


def installed_runtimes() -> list[str]:
    """The ONNX Runtime distributions installed (they share one ``onnxruntime`` import folder)."""
    from importlib import metadata

    found = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            metadata.version(dist)
            found.append(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


GPU_FIX = ("pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'onnxruntime-gpu[cuda,cudnn]>=1.21'")


def choose_providers(device: str = "auto") -> list[str]:
    """Execution providers to ask for: CUDA first when ``device`` is 'auto' or 'cuda' and it is usable.

    'cuda' raises FacecliError, with what to install, when ONNX Runtime has no CUDA provider or no GPU is
    present. Before a CUDA session, the CUDA and cuDNN libraries of the ``nvidia-*`` wheels that
    ``facecli[gpu]`` installs are preloaded (``onnxruntime.preload_dlls``, ONNX Runtime's documented way).
    """
    import onnxruntime as ort

    if device not in DEVICES:
        raise FacecliError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    has_provider = "CUDAExecutionProvider" in ort.get_available_providers()
    if has_provider and _cuda_device_present():
        _preload_cuda_libraries(ort)
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        if not has_provider:
            both = len(installed_runtimes()) > 1
            why = ("onnxruntime and onnxruntime-gpu are both installed and the CPU one won their shared folder"
                   if both else "this ONNX Runtime has no CUDA provider")
            raise FacecliError(f"--device cuda: {why}; install the GPU runtime: {GPU_FIX}")
        raise FacecliError("--device cuda: no CUDA GPU found (no /dev/nvidia0); use --device cpu or auto")
    return ["CPUExecutionProvider"]


def gpu_hint() -> str:
    """A sentence for users whose machine has an NVIDIA GPU that ONNX Runtime cannot use, else ""."""
    if not _cuda_device_present():
        return ""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        return ""
    return f"this machine has an NVIDIA GPU but this ONNX Runtime cannot use it; to run on it: {GPU_FIX}"


_PRELOADED = False


def _preload_cuda_libraries(ort: Any) -> None:
    global _PRELOADED
    if _PRELOADED or not hasattr(ort, "preload_dlls"):
        return
    # libraries from a system CUDA install may still load on their own when this finds none
    with contextlib.suppress(Exception):
        ort.preload_dlls()
    _PRELOADED = True


def _cuda_device_present() -> bool:
    return any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl"))


def read_card(session: Any, path: Path) -> ModelCard:
    """The model card in an ONNX Runtime session's metadata; FacecliError when it is missing or broken."""
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise FacecliError(f"{path} is not a facecli model (no '{METADATA_KEY}' metadata); export one with 'facecli export'")
    try:
        return ModelCard.from_dict(json.loads(props[METADATA_KEY]))
    except (ValueError, KeyError, TypeError) as exc:
        raise FacecliError(f"{path} has broken facecli metadata ({exc})") from None


def load_model(
    path: str | os.PathLike[str] | None = None, task: str | None = None, device: str = "auto", threads: int = 0
) -> OnnxModel:
    """Load a facecli ONNX model; ``path`` None means the shipped default for ``task`` (its int8 copy on the
    CPU, the float model on a GPU: :func:`shipped_model_path`).

    ``device`` is 'auto' (CUDA when usable, else the CPU), 'cuda' (an error when CUDA is not usable) or
    'cpu'. ``threads`` 0 lets ONNX Runtime pick (one per core). The model card is read from the ONNX
    metadata through ONNX Runtime (the ``onnx`` package is not needed). Raises FacecliError (one line)
    when the file is missing, is not ONNX, is not a facecli model, or was made for another task.
    """
    import onnxruntime as ort

    if path is None:
        if task is None:
            raise FacecliError("no model given")
        if task not in DEFAULT_MODELS:
            raise FacecliError(f"task must be one of {', '.join(DEFAULT_MODELS)}, not {task!r}")
        path = default_model_path(task, device)
        if not path.exists():
            raise FacecliError(f"no default {task} model shipped at {path}; pass --model")
    path = Path(path)
    if not path.is_file():
        raise FacecliError(f"model file not found: {path}")
    providers = choose_providers(device)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    # the decoder threads share the cores with inference: idle ORT workers must not spin
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise FacecliError(f"{path} is not an ONNX model ONNX Runtime can load ({first})") from None
    card = read_card(session, path)
    if task is not None:
        check_task(card, task, str(path))
    if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise FacecliError(f"--device cuda: ONNX Runtime could not start CUDA for {path} (CUDA or cuDNN libraries "
                           f"missing?); install them: {GPU_FIX}")
    return OnnxModel(path=path, card=card, session=session, sha256=file_sha256(path), shipped=is_shipped(path))
