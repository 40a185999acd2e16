"""Loading a facecli ONNX model and running it with ONNX Runtime (CUDA when usable, else CPU)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecli.errors import FacecliError
from facecli.preprocess import Preprocessing

METADATA_KEY = "facecli"
DEFAULT_MODELS = {"gender": "gender.onnx", "identity": "identity.onnx"}


def models_dir() -> Path:
    """Where the shipped models are: ``facecli/models`` once installed, ``models/`` in a source checkout."""
    here = Path(__file__).resolve().parent
    for cand in (here / "models", here.parent / "models"):
        if any((cand / name).is_file() for name in DEFAULT_MODELS.values()):
            return cand
    return here.parent / "models"



@dataclass
class OnnxModel:
    """A facecli model: an ONNX Runtime session plus the metadata stored inside the ONNX file.

    ``meta`` holds ``task`` ("gender" or "identity"), ``preprocessing``, and for gender ``labels`` and
    ``threshold``; for identity ``embedding_dim`` and ``threshold``.
    """

    path: Path
    meta: dict[str, Any]
    session: Any = field(repr=False)
    sha256: str = ""

    @property
    def task(self) -> str:
        return str(self.meta["task"])

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing.from_dict(self.meta["preprocessing"])

    @property
    def provider(self) -> str:
        """The execution provider actually in use, e.g. 'CPUExecutionProvider'."""
        return self.session.get_providers()[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run the model on a float32 NCHW batch and return its single output."""
        name = self.session.get_inputs()[0].name
        return self.session.run(None, {name: x})[0]


def default_model_path(task: str) -> Path:
    """The shipped default model for ``task`` in the repository's ``models/`` folder."""
    return models_dir() / DEFAULT_MODELS[task]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file: the model identity a gallery records."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def choose_providers(device: str = "auto") -> list[str]:
    """Execution providers to ask for: CUDA first when ``device`` is 'auto' or 'cuda' and it is available."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available and _cuda_device_present():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise FacecliError("--device cuda asked for, but no usable CUDA GPU was found")
    return ["CPUExecutionProvider"]


def _cuda_device_present() -> bool:
    return any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl"))


def load_model(
    path: str | os.PathLike[str] | None, task: str | None = None, device: str = "auto", threads: int = 0
) -> OnnxModel:
    """Load a facecli ONNX model; ``path`` None means the shipped default for ``task``.

    Raises FacecliError (one line) when the file is missing, is not ONNX, is not a facecli model, or
    was made for another task. ``threads`` 0 lets ONNX Runtime pick (one per core).
    """
    import onnx
    import onnxruntime as ort

    if path is None:
        if task is None:
            raise FacecliError("no model given")
        path = default_model_path(task)
        if not path.exists():
            raise FacecliError(f"no default {task} model shipped at {path}; pass --model")
    path = Path(path)
    if not path.is_file():
        raise FacecliError(f"model file not found: {path}")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:
        raise FacecliError(f"{path} is not an ONNX model") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise FacecliError(f"{path} is not a facecli model (no '{METADATA_KEY}' metadata); export one with 'facecli export'")
    try:
        meta = json.loads(props[METADATA_KEY])
        Preprocessing.from_dict(meta["preprocessing"])
    except (ValueError, KeyError, TypeError):
        raise FacecliError(f"{path} has broken facecli metadata") from None
    if task is not None and meta.get("task") != task:
        raise FacecliError(f"{path} is a {meta.get('task')!r} model, not a {task!r} model")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    # the decoder threads share the cores with inference: idle ORT workers must not spin
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(proto.SerializeToString(), sess_options=opts, providers=choose_providers(device))
    except Exception as exc:
        raise FacecliError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0]}") from None
    return OnnxModel(path=path, meta=meta, session=session, sha256=file_sha256(path))
