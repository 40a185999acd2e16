"""Int8 copies of facecli models for the CPU: static quantisation with ONNX Runtime, calibrated on the crops the
model's own preprocessing cuts.

    facecli export int8 models/identity.onnx --calibration photos/ --out identity-int8.onnx

The copy is a QDQ graph (ONNX Runtime's recommended format): weights int8 per output channel, activations
uint8 (the layers after the last convolution stay float: :func:`head_nodes`), the activation ranges from
MinMax calibration (:data:`RANGES`: the better of two rules) over the model inputs that
:func:`facecli.pipeline.iter_prepared` makes of the calibration images (and their mirror images for a
model whose preprocessing says ``flip``), so calibration sees exactly what inference will. On a CPU with int8
dot-product instructions (AVX-512 VNNI, AVX-VNNI) ONNX Runtime runs the convolutions in int8: the shipped
150 px ResNet runs about 2.4x faster there. On CUDA the graph still runs, with the convolutions in float after
dequantisation: facecli loads the float models on a GPU.

Before anything is written the copy is checked against the source on the calibration inputs (and refused
beyond :data:`MIN_MEAN_COSINE` / :data:`MAX_MEAN_PROBABILITY_CHANGE`). That check is a sanity gate, not the
parity figure: measure the copy on held-out people (``facecli evaluate``, ``scripts/eval_answers.py``) before
shipping it. The copy's card is the source's, with a ``quantized`` record (format, source sha256, calibration
data); an identity copy also lists the source in ``embeds_like``, so galleries built with it stay usable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facecli.atomic import write_bytes
from facecli.errors import FacecliError
from facecli.pipeline import ImageInput, iter_prepared
from facecli.runtime import METADATA_KEY, OnnxModel, load_model

MIN_MEAN_COSINE = 0.999  # identity: mean cosine of the copy's embeddings to the source's, at least
MAX_MEAN_PROBABILITY_CHANGE = 0.01  # gender: mean |P(female) change|, at most
CALIBRATION_BATCH = 32
# two rules for the activation ranges; the copy whose outputs follow the source's more closely on the
# calibration inputs is kept (averaging suits the ResNet embedders; the gender model's output needs the
# full MinMax range: averaged, its P(female) moved by 0.08 on average, against 0.003)
RANGES = {"minmax": {}, "minmax averaged over batches": {"CalibMovingAverage": True}}


def head_nodes(proto: Any) -> list[str]:
    """Names of the nodes after the graph's last convolution (pooling, the embedding or logit layer, its
    normalisation or sigmoid): they stay float. They cost little, and quantised they would round the output
    itself to 256 levels (an embedding's components, P(female))."""
    nodes = list(proto.graph.node)
    last = max((i for i, n in enumerate(nodes) if n.op_type == "Conv"), default=-1)
    return [n.name for n in nodes[last + 1:] if n.name]


def _first(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:160]


def calibration_inputs(model: OnnxModel, images: Sequence[ImageInput], workers: int | None = None) -> np.ndarray:
    """The model inputs (N, 3, S, S) float32 its preprocessing cuts from ``images`` (largest face of each,
    detected and aligned as the card says), with their mirror images appended when the card says ``flip``.
    Unreadable images are skipped; FacecliError when none is left."""
    tensors = [c.tensor for crops, _, _ in iter_prepared(images, model.preprocessing, workers=workers)
               for c in crops]
    if not tensors:
        raise FacecliError("none of the calibration images could be read")
    x = np.stack(tensors).astype(np.float32)
    if model.preprocessing.flip:
        x = np.concatenate([x, x[..., ::-1]])
    return np.ascontiguousarray(x)


def agreement(task: str, ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """How closely the copy's raw outputs follow the source's: embeddings' cosine (identity) or the change of
    P(female) (gender), mean and worst."""
    if task == "identity":
        a = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
        b = got / np.maximum(np.linalg.norm(got, axis=1, keepdims=True), 1e-12)
        cos = (a * b).sum(axis=1)
        return {"mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())}
    d = np.abs(ref.reshape(-1) - got.reshape(-1))
    return {"mean_probability_change": float(d.mean()), "max_probability_change": float(d.max())}


def _raw(session: Any, x: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + CALIBRATION_BATCH]})[0]
                           for i in range(0, len(x), CALIBRATION_BATCH)])


def quantize_model(src: str | os.PathLike[str], out: str | os.PathLike[str], images: Sequence[ImageInput], *,
                   task: str | None = None, calibration: str = "", workers: int | None = None,
                   min_cosine: float = MIN_MEAN_COSINE) -> dict[str, Any]:
    """Write an int8 (QDQ) copy of the facecli model ``src`` to ``out``, calibrated on ``images``.

    ``calibration`` describes the images in words for the card (data, split, N); by default their count.
    ``min_cosine``: an identity copy's least mean cosine to the source's embeddings (a model whose vectors only
    shortlist, such as the photo matcher, can take less: measure what it decides before shipping it).
    Returns the figures: images, inputs, agreement with the source, sizes. FacecliError (nothing written) for a
    model ONNX Runtime cannot quantise or a copy that strays from its source beyond the sanity gates.
    """
    src, out = Path(src), Path(out)
    model = load_model(src, task, device="cpu")
    if model.card.quantized:
        raise FacecliError(f"{src} is already quantised")
    x = calibration_inputs(model, images, workers)
    source_sha = model.sha256
    card = dataclasses.replace(model.card, quantized={
        "format": "QDQ: int8 weights per output channel, uint8 activations (ONNX Runtime static quantisation)",
        "from_sha256": source_sha,
        "calibration": calibration or f"{len(images)} images ({len(x)} model inputs)",
    })
    if card.task == "identity":
        card = dataclasses.replace(card, embeds_like=tuple(dict.fromkeys((*model.card.embeds_like, source_sha))))
    data, agree, ranges = _closest_copy(src, card, x, model.session)
    if card.task == "identity" and agree["mean_cosine"] < min_cosine:
        raise FacecliError(f"the int8 copy strays from {src}: mean cosine {agree['mean_cosine']:.4f} to its "
                           f"embeddings (at least {min_cosine} wanted: --min-cosine); nothing written")
    if card.task == "gender" and agree["mean_probability_change"] > MAX_MEAN_PROBABILITY_CHANGE:
        raise FacecliError(f"the int8 copy strays from {src}: P(female) moves by {agree['mean_probability_change']:.4f}"
                           f" on average (at most {MAX_MEAN_PROBABILITY_CHANGE} wanted); nothing written")
    write_bytes(out, data)
    return {"out": str(out), "images": len(images), "inputs": len(x), "bytes": len(data), "ranges": ranges,
            "source_bytes": src.stat().st_size, "sha256": hashlib.sha256(data).hexdigest(), **agree}


def _batches(name: str, x: np.ndarray) -> Any:
    """ONNX Runtime's calibration reader over ``x`` in batches of :data:`CALIBRATION_BATCH`."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(range(0, len(x), CALIBRATION_BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            i = next(self.batches, None)
            return None if i is None else {name: x[i:i + CALIBRATION_BATCH]}

    return Reader()


def _closest_copy(src: Path, card: Any, x: np.ndarray, session: Any) -> tuple[bytes, dict[str, Any], str]:
    """Quantise ``src`` once per range rule of :data:`RANGES` (the head kept float, ``card`` as its metadata) and
    return the copy whose outputs on ``x`` follow the source's ``session`` most closely: (bytes, agreement,
    range rule)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = session.get_inputs()[0].name
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    ref = _raw(session, x)
    best: tuple[float, bytes, dict[str, Any], str] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception as exc:
            raise FacecliError(f"ONNX Runtime could not prepare {src} for quantisation ({_first(exc)})") from None
        head = head_nodes(onnx.load(str(pre)))
        for ranges, options in RANGES.items():
            q = Path(tmp) / f"q-{ranges}.onnx"
            try:
                quantize_static(str(pre), str(q), _batches(name, x), quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax, extra_options=options,
                                nodes_to_exclude=head)
            except Exception as exc:
                raise FacecliError(f"ONNX Runtime could not quantise {src} ({_first(exc)})") from None
            proto = onnx.load(str(q))
            rec = dataclasses.replace(card, quantized={**card.quantized, "ranges": ranges})
            del proto.metadata_props[:]
            entry = proto.metadata_props.add()
            entry.key, entry.value = METADATA_KEY, json.dumps(rec.to_dict())
            blob = proto.SerializeToString()
            copy = ort.InferenceSession(blob, sess_options=opts, providers=["CPUExecutionProvider"])
            agree = agreement(card.task, ref, _raw(copy, x))
            loss = 1.0 - agree["mean_cosine"] if card.task == "identity" else agree["mean_probability_change"]
            if best is None or loss < best[0]:
                best = (loss, blob, agree, ranges)
    assert best is not None
    return best[1], best[2], best[3]
