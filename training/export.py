"""``facecli export``: run folder -> ONNX model carrying its own preprocessing and labels, checked against PyTorch."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from facecli.training.models import InferenceWrapper, create_model
from facecli.training.run_dir import WEIGHTS, read_config

from facecli.atomic import write_with
from facecli.card import ModelCard
from facecli.errors import FacecliError
from facecli.runtime import METADATA_KEY


def build_from_run(run_dir: str | os.PathLike[str]) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the trained model of a run folder (eval mode) and return it with its config."""
    from safetensors.torch import load_file

    cfg = read_config(run_dir)
    model = create_model(cfg["task"], cfg["backbone"], "none", **cfg.get("model_kwargs", {}))
    model.load_state_dict(load_file(str(Path(run_dir) / WEIGHTS)))
    return model.eval(), cfg


class _StaticPadConv(torch.nn.Module):
    """A TF-style 'same' convolution with its padding fixed for one input size (exports without shape ops)."""

    def __init__(self, conv: torch.nn.Conv2d, pad: tuple[int, int, int, int]):
        super().__init__()
        self.pad = pad
        self.conv = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0,
                                    conv.dilation, conv.groups, conv.bias is not None)
        self.conv.load_state_dict(conv.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.nn.functional.pad(x, self.pad))


def freeze_same_padding(model: torch.nn.Module, size: int) -> int:
    """Replace timm's dynamic 'same'-padding convolutions by static ones for ``size`` x ``size`` inputs.

    The ONNX graph then holds plain Pad + Conv nodes instead of shape arithmetic (about 30% faster on
    CPU for the TF EfficientNet-Lite backbones); outputs are identical for that input size. Returns the
    number of layers replaced.
    """
    from timm.layers import Conv2dSame
    from timm.layers.padding import get_same_padding

    sizes: dict[str, tuple[int, int]] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, inp, name=name: sizes.__setitem__(name, inp[0].shape[-2:]))
             for name, m in model.named_modules() if isinstance(m, Conv2dSame)]
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    for name, (ih, iw) in sizes.items():
        conv = model.get_submodule(name)
        ph = get_same_padding(ih, conv.kernel_size[0], conv.stride[0], conv.dilation[0])
        pw = get_same_padding(iw, conv.kernel_size[1], conv.stride[1], conv.dilation[1])
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, _StaticPadConv(conv, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)))
    return len(sizes)


def constant_folded(proto: Any) -> Any:
    """``proto`` after ONNX Runtime's basic (hardware-independent) graph optimisations: constant folding,
    BatchNorm folded into convolutions, redundant nodes removed."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(Path(tmp) / "basic.onnx")
        ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        return onnx.load(opts.optimized_model_filepath)


def fold_pads_into_convs(proto: Any) -> int:
    """Merge each constant zero ``Pad`` that feeds a single ``Conv`` into that Conv's ``pads`` (in place).

    The static 'same' padding of the TF EfficientNet-Lite backbones exports as Pad + Conv; a Pad between
    convolutions stops ONNX Runtime's blocked-layout (NCHWc) kernels and costs two layout reorders each.
    Conv's own asymmetric pads compute the same thing (about 30% faster on CPU). ``proto`` must be
    constant-folded (see :func:`constant_folded`). Returns the number of Pads removed.
    """
    from onnx import helper, numpy_helper

    graph = proto.graph
    consts = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    folded = 0
    for node in list(graph.node):
        if node.op_type != "Pad" or len(node.input) < 2 or node.input[1] not in consts:
            continue
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
        value = node.input[2] if len(node.input) > 2 else ""
        if mode != b"constant" or (value and (value not in consts or numpy_helper.to_array(consts[value]).any())):
            continue
        pads = numpy_helper.to_array(consts[node.input[1]]).tolist()
        users = consumers.get(node.output[0], [])
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0 or node.output[0] in outputs:
            continue
        if len(users) != 1 or users[0].op_type != "Conv":
            continue
        conv = users[0]
        if any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in conv.attribute):
            continue
        old = next((a for a in conv.attribute if a.name == "pads"), None)
        begin_end = list(old.ints) if old is not None else [0, 0, 0, 0]
        if old is not None:
            conv.attribute.remove(old)
        conv.attribute.append(helper.make_attribute(
            "pads", [begin_end[0] + pads[2], begin_end[1] + pads[3], begin_end[2] + pads[6], begin_end[3] + pads[7]]))
        conv.input[0] = node.input[0]
        graph.node.remove(node)
        folded += 1
    used = {name for node in graph.node for name in node.input}
    for init in list(graph.initializer):
        if init.name not in used:
            graph.initializer.remove(init)
    return folded


def model_metadata(cfg: dict[str, Any]) -> dict[str, Any]:
    """What travels inside the ONNX file: the run's model card (everything inference needs, and the
    validation metrics), validated on the way."""
    card = ModelCard.from_dict(cfg)
    return replace(card, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")).to_dict()


def export_run(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], task: str | None = None,
               opset: int = 17, atol: float = 1e-4) -> dict[str, Any]:
    """Export a run folder to ONNX with a dynamic batch axis and check it against PyTorch.

    The check runs random inputs of batch sizes 1 and 4 through both and fails (FacecliError, nothing
    written) when the largest absolute difference exceeds ``atol``. Returns the check's figures.
    """
    model, cfg = build_from_run(run_dir)
    try:
        card = ModelCard.from_dict(cfg)  # the run's model card, validated before anything is exported
    except ValueError as exc:
        raise FacecliError(f"{run_dir}: broken model card in config.json ({exc})") from None
    if task is not None and card.task != task:
        raise FacecliError(f"{run_dir} holds a {card.task!r} model, not a {task!r} model")
    return export_module(model, cfg, out, opset=opset, atol=atol)


def export_module(model: torch.nn.Module, cfg: dict[str, Any], out: str | os.PathLike[str], opset: int = 17,
                  atol: float = 1e-4) -> dict[str, Any]:
    """Export ``model`` (eval mode) with the model card ``cfg`` to ONNX at ``out``, checked against PyTorch as
    :func:`export_run` says: the one export path of run folders and of released starting weights alike."""
    import onnx
    import onnxruntime as ort

    card = ModelCard.from_dict(cfg)
    spec = card.preprocessing
    reference = InferenceWrapper(model, card.task).eval()
    wrapper = copy.deepcopy(reference)
    freeze_same_padding(wrapper, spec.size)
    dummy = torch.randn(2, 3, spec.size, spec.size)
    out = Path(out)
    tmp_dir = out.parent
    tmp_dir.mkdir(parents=True, exist_ok=True)
    raw = tmp_dir / f".{out.name}.raw.tmp"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, (dummy,), str(raw), input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=opset,
                              dynamo=False)
        proto = constant_folded(onnx.load(str(raw)))
        fold_pads_into_convs(proto)
    finally:
        if raw.exists():
            raw.unlink()
    meta = model_metadata(cfg)
    del proto.metadata_props[:]  # only ours
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    proto.doc_string = f"facecli {card.task} model ({card.backbone})"
    data = proto.SerializeToString()

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for n in (1, 4):
        x = rng.standard_normal((n, 3, spec.size, spec.size)).astype(np.float32)
        with torch.inference_mode():
            ref = reference(torch.from_numpy(x)).numpy()  # the model as trained, not the frozen copy
        got = sess.run(None, {"input": x})[0]
        if got.shape != ref.shape:
            raise FacecliError(f"ONNX output shape {got.shape} differs from PyTorch {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    if worst > atol:
        raise FacecliError(f"ONNX export differs from PyTorch: max abs diff {worst:.2e} > {atol:.0e}; not written")
    write_with(out, lambda tmp: tmp.write_bytes(data))
    return {"out": str(out), "max_abs_diff": worst, "task": card.task, "bytes": len(data), "metadata": meta}
