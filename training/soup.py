"""Average a fine-tuned face model's weights with the weights it started from (weight-space ensembling).

    facecli export identity runs/identity_face --out runs/identity_distilled.onnx
    python -m facecli.training.soup runs/identity_distilled.onnx --out models/identity.onnx --weight 0.5
    python -m facecli.training.calibrate_scores ../shared/data/FACECOM --model models/identity.onnx --flip

Fine-tuning dlib's network on FACECOM's degraded copies (``distill_identity``) taught it the degradations but
blunted what the released network knew about telling people apart: on held-out people its false-match tail
grew (TAR at FMR 1e-5 0.46 -> 0.23), while its top-1 on degraded probes rose. The two networks are one
fine-tuning apart, so every weight in between is a network too: ``weight`` x fine-tuned + (1 - ``weight``) x
start (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022: WiSE-FT). Both are read as ONNX
files of the same graph (the same export path: ``facecli export`` for a run folder; without ``--start`` the
released weights of the tuned model's backbone, dlib's CC0 network from ``face-recognition-models``, are
exported here with the tuned model's card), and the float initialisers are averaged one by one. The export
folds each per-channel scale into its convolution, so the average is of the folded weights: the same network
family, computed the same way whatever the weight.

The new file's embeddings differ from both: its card drops the score scale, false-match curve, threshold and
``embeds_like`` (galleries of the tuned model must be rebuilt), and records in ``metrics["weights"]`` what it
was made of. Calibrate it next (``calibrate_scores``, last line above); facecli refuses no uncalibrated
model, but its default thresholds come from that calibration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from facecli.training.recipe import recipe_main

from facecli.atomic import write_bytes
from facecli.card import ModelCard
from facecli.errors import FacecliError
from facecli.runtime import METADATA_KEY


@dataclass
class SoupOptions:
    """What :func:`soup` takes (``python -m facecli.training.soup --help``)."""

    tuned: Path = field(metadata={"help": "the fine-tuned model (ONNX, from facecli export)"})
    out: Path = field(default=Path("models/identity.onnx"), metadata={"help": "ONNX file to write"})
    start: Path | None = field(default=None, metadata={
        "help": "the starting weights as ONNX of the same graph (default: the backbone's released weights, "
                "exported here)"})
    weight: float = field(default=0.5, metadata={"help": "share of the fine-tuned weights, in [0, 1]"})


def main() -> None:
    recipe_main(SoupOptions, soup, __doc__)


def _read_onnx(path: Path) -> tuple[bytes, Any]:
    """The bytes and the parsed ONNX model of ``path``; FacecliError for a missing or unreadable file."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        raw = Path(path).read_bytes()
        return raw, onnx.load_from_string(raw)
    except OSError as exc:
        raise FacecliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except DecodeError:
        raise FacecliError(f"{path} is not an ONNX model") from None


def _card(proto: Any) -> dict[str, Any]:
    import json

    entry = next((p for p in proto.metadata_props if p.key == METADATA_KEY), None)
    if entry is None:
        raise FacecliError("not a facecli model: its ONNX metadata has no model card")
    return json.loads(entry.value)


def _layout(proto: Any) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(n.op_type, tuple(n.input), tuple(n.output)) for n in proto.graph.node]


def average_weights(tuned: Any, start: Any, weight: float) -> Any:
    """A copy of ``tuned`` (an ONNX ``ModelProto``) whose float initialisers are ``weight`` x its own +
    (1 - ``weight``) x ``start``'s. Refuses (FacecliError) graphs that differ in nodes, initialiser names,
    shapes or types, or whose non-float initialisers (shapes, axes) differ."""
    from onnx import numpy_helper

    if not 0.0 <= weight <= 1.0:
        raise FacecliError(f"weight must lie in [0, 1], not {weight}")
    if _layout(tuned) != _layout(start):
        raise FacecliError("the two models are not the same graph (export both with facecli export)")
    other = {i.name: numpy_helper.to_array(i) for i in start.graph.initializer}
    out = type(tuned)()
    out.CopyFrom(tuned)
    for k, init in enumerate(out.graph.initializer):
        a = numpy_helper.to_array(init)
        b = other.get(init.name)
        if b is None or b.shape != a.shape or b.dtype != a.dtype:
            raise FacecliError(f"initialiser {init.name!r} differs in name, shape or type between the two models")
        if a.dtype.kind == "f":
            mixed = (weight * a.astype(np.float64) + (1.0 - weight) * b.astype(np.float64)).astype(a.dtype)
            out.graph.initializer[k].CopyFrom(numpy_helper.from_array(mixed, init.name))
        elif not np.array_equal(a, b):
            raise FacecliError(f"non-float initialiser {init.name!r} differs between the two models")
    return out


def export_released(card: dict[str, Any], out: Path) -> Path:
    """Export the released weights of ``card``'s backbone (for dlib_resnet: dlib's CC0 network from the
    ``face-recognition-models`` package) with that card, through the one export path."""
    from facecli.training.export import export_module
    from facecli.training.models import create_model

    model = create_model(card["task"], card["backbone"], "auto").eval()
    export_module(model, card, out)
    return out


def soup(args: SoupOptions) -> dict[str, Any]:
    """Write ``args.out``: the weight average of ``args.tuned`` and its starting weights (module docstring)."""
    import json


    raw, tuned = _read_onnx(args.tuned)
    card = _card(tuned)
    with tempfile.TemporaryDirectory() as tmp:
        start_raw, start = _read_onnx(args.start or export_released(card, Path(tmp) / "start.onnx"))
    mixed = average_weights(tuned, start, args.weight)
    start_name = (f"{args.start} (sha256 {hashlib.sha256(start_raw).hexdigest()[:12]})" if args.start
                  else f"the released weights of {card['backbone']} (the starting weights)")
    described = (f"{args.weight:g} x {args.tuned.name} (sha256 {hashlib.sha256(raw).hexdigest()[:12]}) + "
                 f"{1 - args.weight:g} x {start_name}, averaged weight by weight (facecli.training.soup)")
    new = ModelCard.from_dict(card)
    new = dataclasses.replace(
        new, score_scale=None, false_match=None, stranger_curve=(), embeds_like=(), threshold=None,
        threshold_source="not calibrated yet (python -m facecli.training.calibrate_scores)",
        metrics={"weights": described})
    entry = next(p for p in mixed.metadata_props if p.key == METADATA_KEY)
    entry.value = json.dumps(new.to_dict())
    data = mixed.SerializeToString()
    _check_outputs(data, new)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(args.out, data)
    print(f"wrote {args.out}: {described}")
    return {"out": str(args.out), "weights": described}


def _check_outputs(data: bytes, card: ModelCard) -> None:
    """Refuse a model whose outputs on random inputs are not finite (a sanity gate before writing)."""
    import onnxruntime as ort

    size = card.preprocessing.size
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    if not np.isfinite(y).all():
        raise FacecliError("the averaged model gives non-finite outputs; not written")


if __name__ == "__main__":
    main()
