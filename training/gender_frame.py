"""Gender from the whole frame, for photos whose face the glare washed out: a linear head on the photo matcher.

Where sun glare paints the face white (FACECOM's "sunny"; the detector places such a face by its framing
rule and marks it ``fallback``), the face model has nothing to look at. Hair, head outline, clothes and
build remain. This recipe puts a balanced logistic regression on the L2-normalised 512-d whole-frame
embedding of ``identity_facecom.onnx`` (112 px centred crop, trained on FACECOM's clean and degraded
frames, shipped already as the photo matcher) and writes the head alone as ``gender_frame_head.onnx``
(input: that embedding; output: P(female); 2 KB). ``classify`` uses it only for faces marked
``fallback``, fused with the face model (:mod:`facecli.frame_gender`; the row's ``evidence`` says
``face+frame``).

Data: FACECOM Task A's training people plus Task B's seven distorted copies of the same photos, split by
person exactly as the gender head (seed 0, 20% of people held out, grouped and stratified); sun-glared
images weigh ``--sunny-weight``. The threshold is tuned on the held-out people's sun-glared copies
(maximum balanced accuracy); the head's bias is then shifted so that this threshold falls on the face
gender model's threshold, so one threshold on ``p_female`` serves both.

    python -m facecli.training.gender_frame ../shared/data/FACECOM --out models/gender_frame_head.onnx

Caveat: the photo matcher was trained (identity labels, no gender) on FACECOM Task B's 702 training
identities, chosen by a different seeded split than the gender people; some held-out gender people are
among them, so the held-out figures of this head may be optimistic. FACECOM's val split is independent.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from facecli.training.recipe import recipe_main

from facecli.atomic import write_bytes
from facecli.card import ModelCard
from facecli.frame_gender import HEAD_FILE
from facecli.metrics import gender_metrics, tune_threshold
from facecli.options import RunOptions
from facecli.runtime import METADATA_KEY, OnnxModel, load_model, models_dir


def head_card(embedder: OnnxModel, threshold: float, source: str, metrics: dict) -> ModelCard:
    """The frame head's model card: a gender model whose input is ``embedder``'s embedding (``reads``), read
    through :func:`facecli.load_model` like any other."""
    return ModelCard(task="gender", backbone=f"logistic regression on {embedder.path.name}'s embedding",
                     preprocessing=embedder.preprocessing, threshold=float(threshold), threshold_source=source,
                     embedding_dim=None, metrics=metrics, reads=embedder.sha256,
                     created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))


def logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def head_model(weight: np.ndarray, bias: float, card: ModelCard) -> bytes:
    """A linear head and a sigmoid as an ONNX graph: input ``embedding`` (N, D), output ``p_female`` (N,), with
    its model card (a gender card that ``reads`` the embedder's embedding) in the metadata, as every facecli
    model has it."""
    import onnx
    from onnx import helper, numpy_helper

    d = len(weight)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["embedding", "w"], ["z"]), helper.make_node("Add", ["z", "b"], ["logit"]),
         helper.make_node("Sigmoid", ["logit"], ["p"]), helper.make_node("Reshape", ["p", "shape"], ["p_female"])],
        "frame_gender_head",
        [helper.make_tensor_value_info("embedding", onnx.TensorProto.FLOAT, ["batch", d])],
        [helper.make_tensor_value_info("p_female", onnx.TensorProto.FLOAT, ["batch"])],
        [numpy_helper.from_array(weight.reshape(d, 1).astype(np.float32), "w"),
         numpy_helper.from_array(np.array([bias], np.float32), "b"),
         numpy_helper.from_array(np.array([-1], np.int64), "shape")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(card.to_dict())
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


@dataclass
class GenderFrameOptions:
    """What :func:`fit_frame_head` takes (``python -m facecli.training.gender_frame --help``)."""

    data: Path = field(metadata={"help": "FACECOM folder holding Task_A/ and Task_B/"})
    out: Path = field(default=Path("models") / HEAD_FILE, metadata={"help": "the head's ONNX file to write"})
    embedder: Path = field(default=models_dir() / "identity_facecom.onnx", metadata={"help": "the photo matcher"})
    gender_model: Path = field(default=models_dir() / "gender.onnx", metadata={
        "help": "the face gender model whose threshold the frame head is aligned to"})
    c: float = field(default=1.0, metadata={"help": "inverse L2 strength of the logistic regression"})
    sunny_weight: float = 3.0
    seed: int = 0
    val_fraction: float = 0.2


def main() -> None:
    recipe_main(GenderFrameOptions, fit_frame_head, __doc__)


def fit_frame_head(args: GenderFrameOptions) -> None:
    """Fit the whole-frame gender head and write it with its card (see the module docstring)."""
    from facecli.training.gender_head import GenderHeadOptions, head_split
    from sklearn.linear_model import LogisticRegression

    from facecli.recognise import embed_images

    opt = GenderHeadOptions(data=args.data, backbone_weights="-", seed=args.seed, val_fraction=args.val_fraction)
    tr_p, tr_y, va_p, va_y, _, n_people = head_split(opt)
    embedder = load_model(args.embedder, "identity", "cpu")
    run = RunOptions(detect="none")

    def features(paths: list[Path], labels: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        e = embed_images(embedder, paths, run)
        sunny = np.array(["_sunny" in p.name for p in paths])
        return e.vectors[e.ok], np.asarray(labels)[e.ok], sunny[e.ok]

    x_tr, y_tr, s_tr = features(tr_p, tr_y)
    x_va, y_va, s_va = features(va_p, va_y)
    w = np.where(s_tr, args.sunny_weight, 1.0)
    clf = LogisticRegression(C=args.c, class_weight="balanced", max_iter=5000).fit(x_tr, y_tr, sample_weight=w)
    p_va = clf.predict_proba(x_va)[:, 1]
    thr, _ = tune_threshold(y_va[s_va], p_va[s_va], "balanced_accuracy")
    target = float(load_model(args.gender_model, "gender", "cpu").card.default_threshold)
    shift = logit(target) - logit(thr)
    p_shift = 1.0 / (1.0 + np.exp(-(np.log(p_va / (1 - p_va)) + shift)))
    m_sunny = gender_metrics(y_va[s_va], p_shift[s_va], target)
    m_all = gender_metrics(y_va, p_shift, target)
    flat = {f"val_sunny_{k}": v for k, v in m_sunny.items() if not isinstance(v, dict | list)}
    flat.update({f"val_all_kinds_{k}": v for k, v in m_all.items() if not isinstance(v, dict | list)})
    flat.update(recipe=f"balanced logistic regression, C {args.c}, sunny weight {args.sunny_weight}",
                split=f"{args.val_fraction:.0%} of people held out (grouped, seed {args.seed}); {n_people} people")
    card = head_card(embedder, target, f"maximum balanced accuracy on the held-out people's sun-glared copies "
                                       f"({thr:.4f}), the head's bias shifted so that it falls on the face gender "
                                       "model's threshold", flat)
    write_bytes(args.out, head_model(clf.coef_[0], float(clf.intercept_[0]) + shift, card))
    print(f"{len(y_tr)} train / {len(y_va)} held-out images; held-out sunny (N={int(s_va.sum())}): accuracy "
          f"{m_sunny['accuracy']:.4f}, female recall {m_sunny['recall']:.4f}, balanced accuracy "
          f"{m_sunny['balanced_accuracy']:.4f}, AUC {m_sunny['roc_auc']:.4f}; all kinds accuracy "
          f"{m_all['accuracy']:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
