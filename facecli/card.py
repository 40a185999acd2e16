"""The model card record: what a facecli model is and how to use it, in one typed, validated place.

In the spirit of timm's ``PretrainedCfg``: a :class:`ModelCard` travels with the weights. Training writes it
into the run folder's ``config.json``, export writes it into the ONNX file's metadata (key ``facecli``),
and inference reads it back through :func:`ModelCard.from_dict`, the one reader. Which match or
classification threshold applies is decided by :func:`resolve_threshold`, nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from facecli.calibration import FalseMatchCurve
from facecli.errors import FacecliError
from facecli.face.preprocess import Preprocessing

CARD_FORMAT = 1
TASKS = ("gender", "identity")
GENDER_LABELS = ("male", "female")  # index = label: 0 = male, 1 = female (the positive class)
OUTPUTS = {"gender": "p_female", "identity": "l2_normalised_embedding"}
BUILT_IN_THRESHOLD = 0.5  # used only when neither the caller, the gallery nor the model gives one
LOWEST_SCORE = {"gender": 0.0, "identity": -1.0}  # P(female) lies in [0, 1], cosine similarity in [-1, 1]


def in_score_range(task: str, value: float) -> bool:
    """True when ``value`` is a finite score the task's model can output (a usable threshold)."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(t) and LOWEST_SCORE[task] <= t <= 1.0


def check_threshold(task: str, value: float | None, name: str = "threshold") -> float | None:
    """A threshold given for ``task``'s scores, checked against their range; FacecliError naming ``name`` when
    it lies outside it."""
    if value is not None and not in_score_range(task, value):
        raise FacecliError(f"{name} must lie in [{LOWEST_SCORE[task]:g}, 1] for a {task} model, not {value}")
    return None if value is None else float(value)


@dataclass(frozen=True)
class ScoreScale:
    """How an identity model's cosine similarity becomes a readable score in [0, 1].

    score = 1 / (1 + ((1 - cos) / (1 - centre)) ** slope): a logistic fit of "same person" against
    "stranger" on log(1 - cos), with both classes weighted equally, so a score reads roughly as the
    probability that two faces are one person when both answers are equally likely beforehand. The score is
    0.5 at cos = ``centre``; the ranking of identities is the cosine's (the map is increasing).
    fitted_on: the data, split and protocol it was fitted on, in words.
    """

    centre: float
    slope: float
    fitted_on: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.centre) and -1.0 < self.centre < 1.0):
            raise ValueError(f"score scale centre must lie in (-1, 1), not {self.centre}")
        if not (math.isfinite(self.slope) and 0.0 < self.slope <= 100.0):
            raise ValueError(f"score scale slope must lie in (0, 100], not {self.slope}")

    def __call__(self, cos: Any) -> Any:
        """The score of cosine similarities (a number or an array; NaN stays NaN)."""
        import numpy as np

        c = np.asarray(cos, dtype=np.float64)
        d = np.maximum(1.0 - np.minimum(c, 1.0), 0.0) / (1.0 - self.centre)
        with np.errstate(over="ignore", divide="ignore"):
            out = 1.0 / (1.0 + d**self.slope)
        return float(out) if np.ndim(out) == 0 else out.astype(np.float32)

    def cosine(self, score: float) -> float:
        """The cosine similarity at which the scale gives ``score`` (0 < score < 1)."""
        return float(1.0 - (1.0 - self.centre) * (1.0 / score - 1.0) ** (1.0 / self.slope))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "log_logistic", "centre": self.centre, "slope": self.slope, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, d: Any) -> ScoreScale | None:
        """Read :meth:`to_dict` output; None for None."""
        if d is None:
            return None
        if not isinstance(d, dict) or d.get("kind") != "log_logistic":
            raise ValueError("score_scale must be a log_logistic record")
        return cls(float(d["centre"]), float(d["slope"]), str(d.get("fitted_on") or ""))


@dataclass(frozen=True)
class ModelCard:
    """Everything inference needs to know about a model, checked when it is made.

    task: "gender" (outputs P(female)) or "identity" (outputs L2-normalised embeddings).
    backbone: the registry name of the network (e.g. "dlib_resnet", "tf_efficientnet_lite0").
    preprocessing: how an image becomes the model's input (size, normalisation, detection, alignment
        template): :class:`facecli.face.preprocess.Preprocessing`.
    threshold: the decision threshold tuned on validation data: P(female) for gender; for identity the score
        of ``score_scale`` when the model has one, else cosine similarity; None when the model was never
        tuned (then :data:`BUILT_IN_THRESHOLD`).
    threshold_source: where ``threshold`` came from, in words.
    labels: gender class names, index = label (male, female).
    embedding_dim: identity embedding size.
    metrics: validation figures (flat name -> number or text), with the split and protocol they come from.
    created: ISO time of export.
    score_scale: identity only: how cosines become the scores that ``match`` reports and thresholds
        (:class:`ScoreScale`); None: scores are cosine similarities.
    stranger_curve: identity only: (score, share of strangers whose best score reaches it) pairs measured
        on validation data, for warning when a threshold would let most strangers in.
    embeds_like: sha256 digests of model files whose embeddings this model's match (the same weights with
        another card, or the float model an int8 copy was made from): galleries built with them stay valid.
    false_match: identity only: the per-comparison false-match rate against score, measured on held-out
        people (:class:`facecli.calibration.FalseMatchCurve`): ``verify`` and ``match`` take their default
        thresholds from it (:func:`facecli.decision.decide`). None: the card's ``threshold`` applies.
    quantized: for an int8 copy (``facecli export int8``): its format, the source model's sha256 and the
        calibration data, in words; empty for a float model.
    reads: for a head on another model's embedding (the whole-frame gender head), that model's sha256: the
        head's input is its embedding, not an image, and ``preprocessing`` is that model's; empty otherwise.
    """

    task: str
    backbone: str
    preprocessing: Preprocessing
    threshold: float | None = None
    threshold_source: str = "validation"
    labels: tuple[str, ...] = GENDER_LABELS
    embedding_dim: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    score_scale: ScoreScale | None = None
    stranger_curve: tuple[tuple[float, float], ...] = ()
    embeds_like: tuple[str, ...] = ()
    false_match: FalseMatchCurve | None = None
    quantized: dict[str, str] = field(default_factory=dict)
    reads: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ValueError("backbone must be a non-empty name")
        if not isinstance(self.preprocessing, Preprocessing):
            raise ValueError("preprocessing must be a Preprocessing record")
        self.preprocessing.validate()
        if self.threshold is not None and not in_score_range(self.task, self.threshold):
            raise ValueError(f"threshold must lie in [{LOWEST_SCORE[self.task]:g}, 1], not {self.threshold}")
        if self.task == "gender" and len(self.labels) != 2:
            raise ValueError(f"a gender model needs two labels, not {list(self.labels)}")
        if self.task == "identity" and self.embedding_dim is not None and int(self.embedding_dim) < 1:
            raise ValueError(f"embedding_dim must be positive, not {self.embedding_dim}")

    @property
    def output(self) -> str:
        """What the network outputs: "p_female" or "l2_normalised_embedding"."""
        return OUTPUTS[self.task]

    @property
    def default_threshold(self) -> float:
        """The model's tuned threshold, or :data:`BUILT_IN_THRESHOLD` when it has none."""
        return BUILT_IN_THRESHOLD if self.threshold is None else float(self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written into run folders and ONNX metadata."""
        d: dict[str, Any] = {
            "format": CARD_FORMAT, "task": self.task, "backbone": self.backbone,
            "preprocessing": self.preprocessing.to_dict(), "threshold": self.threshold,
            "threshold_source": self.threshold_source, "output": self.output,
            "metrics": dict(self.metrics), "created": self.created,
        }
        if self.quantized:
            d["quantized"] = dict(self.quantized)
        if self.reads:
            d["reads"] = self.reads
        if self.task == "gender":
            d["labels"] = list(self.labels)
        else:
            d["embedding_dim"] = self.embedding_dim
            if self.score_scale is not None:
                d["score_scale"] = self.score_scale.to_dict()
            if self.stranger_curve:
                d["stranger_curve"] = [list(p) for p in self.stranger_curve]
            if self.embeds_like:
                d["embeds_like"] = list(self.embeds_like)
            if self.false_match is not None:
                d["false_match"] = self.false_match.to_dict()
        return d

    def strangers_accepted(self, threshold: float) -> float | None:
        """The share of strangers the model's validation data says ``threshold`` lets in (None: not measured);
        a card with a false-match curve says it per gallery size instead (:func:`facecli.decision.decide`)."""
        if not self.stranger_curve:
            return None
        import numpy as np

        xs, ys = zip(*sorted(self.stranger_curve), strict=True)
        return float(np.interp(threshold, xs, ys))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        """Read a card from its JSON form (also the metadata of models exported before the card existed).

        Raises ValueError when a field is missing or out of range.
        """
        if not isinstance(d, dict):
            raise ValueError("a model card is a JSON object")
        try:
            task, backbone, pre = d["task"], d.get("backbone") or "unknown", d["preprocessing"]
        except KeyError as exc:
            raise ValueError(f"model card lacks {exc.args[0]!r}") from None
        dim = d.get("embedding_dim")
        if dim is None and task == "identity":
            dim = (d.get("model_kwargs") or {}).get("embedding_dim")
        metrics = {k: v for k, v in (d.get("metrics") or {}).items() if not isinstance(v, dict | list)}
        return cls(task=task, backbone=str(backbone), preprocessing=Preprocessing.from_dict(pre),
                   threshold=None if d.get("threshold") is None else float(d["threshold"]),
                   threshold_source=str(d.get("threshold_source") or "validation"),
                   labels=tuple(d.get("labels") or GENDER_LABELS), embedding_dim=None if dim is None else int(dim),
                   metrics=metrics, created=str(d.get("created") or ""),
                   score_scale=ScoreScale.from_dict(d.get("score_scale")),
                   stranger_curve=tuple((float(a), float(b)) for a, b in d.get("stranger_curve") or ()),
                   embeds_like=tuple(str(x) for x in d.get("embeds_like") or ()),
                   false_match=FalseMatchCurve.from_dict(d.get("false_match")),
                   quantized={str(k): str(v) for k, v in (d.get("quantized") or {}).items()},
                   reads=str(d.get("reads") or ""))


def resolve_threshold(card: ModelCard, override: float | None = None, stored: float | None = None,
                      stored_source: str = "gallery") -> tuple[float, str]:
    """The threshold that applies, and where it came from, in this order of precedence:

    1. ``override``: what the user passed (``--threshold``);
    2. ``stored``: a threshold kept with the data being matched (a gallery's calibrated one);
    3. the model card's validation-tuned threshold;
    4. :data:`BUILT_IN_THRESHOLD` (0.5).

    Raises FacecliError for an override outside the range the task's scores can take ([0, 1] for
    P(female), [-1, 1] for cosine similarity) or not finite.
    """
    if check_threshold(card.task, override) is not None:
        return float(override), "given"
    if stored is not None:
        return float(stored), stored_source
    if card.threshold is not None:
        return float(card.threshold), f"model: {card.threshold_source}"
    return BUILT_IN_THRESHOLD, "built-in default"


def check_task(card: ModelCard, task: str, where: str = "model") -> None:
    """Raise a one-line FacecliError when ``card`` is not a model for ``task``."""
    if card.task != task:
        raise FacecliError(f"{where} is a {card.task!r} model, not a {task!r} model")
