"""Metrics, computed with scikit-learn: gender classification and face identification/verification."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass

from facecli.card import GENDER_LABELS


def _skm():
    """scikit-learn's metrics, imported on first use (it costs seconds of start-up)."""
    from sklearn import metrics

    return metrics

# ---------------------------------------------------------------- gender


def gender_metrics(y_true: Sequence[int], p_female: Sequence[float], threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, precision, recall, F1 (female positive), balanced accuracy, ROC AUC, average precision,
    per-class report and confusion matrix (rows true male/female, columns predicted) at ``threshold``."""
    skm = _skm()
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(p_female, dtype=float)
    pred = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    out: dict[str, Any] = {
        "n": int(len(y)),
        "n_male": int((y == 0).sum()),
        "n_female": int((y == 1).sum()),
        "threshold": float(threshold),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)) if both else float("nan"),
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "average_precision": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "confusion_matrix": skm.confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "per_class": skm.classification_report(
            y, pred, labels=[0, 1], target_names=list(GENDER_LABELS), output_dict=True, zero_division=0
        ),
    }
    return out


def tune_threshold(y_true: Sequence[int], p_female: Sequence[float], objective: str = "f1") -> tuple[float, float]:
    """The decision threshold maximising ``objective`` ("f1" of the female class or "balanced_accuracy").

    Returns (threshold, objective value). The threshold is the midpoint between the lowest score
    predicted positive and the next lower score, so scores that move by float noise (PyTorch vs ONNX)
    keep their side of it.
    """
    skm = _skm()
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(p_female, dtype=float)
    if len(np.unique(y)) < 2:
        return 0.5, float("nan")
    if objective == "f1":
        prec, rec, thr = skm.precision_recall_curve(y, p)
        f1 = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12)
        i = int(np.argmax(f1))
        return midpoint_below(p, float(thr[i])), float(f1[i])
    if objective == "balanced_accuracy":
        fpr, tpr, thr = skm.roc_curve(y, p)
        ba = (tpr + 1 - fpr) / 2
        i = int(np.argmax(np.where(np.isfinite(thr), ba, -1)))
        return midpoint_below(p, float(min(thr[i], 1.0))), float(ba[i])
    raise ValueError(f"unknown objective {objective!r}")


def midpoint_below(scores: np.ndarray, t: float, floor: float = 0.0) -> float:
    """A threshold that classifies ``scores`` exactly as ``>= t`` does, halfway to the next lower score
    (or to ``floor`` when there is none), instead of on top of a sample."""
    below = scores[scores < t]
    return float((t + (below.max() if len(below) else min(floor, t))) / 2)


# ---------------------------------------------------------------- identity


def top_k(similarity: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest entries of each row, best first."""
    k = min(k, similarity.shape[1])
    idx = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(similarity, idx, 1)
    order = np.argsort(-vals, axis=1)
    return np.take_along_axis(idx, order, 1), np.take_along_axis(vals, order, 1)


def roc_points(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false accept rates, true accept rates, thresholds) of the verification ROC curve."""
    y = np.r_[np.ones(len(genuine)), np.zeros(len(impostor))]
    return _skm().roc_curve(y, np.r_[genuine, impostor])


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float,
               roc: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> float:
    """True accept rate at the threshold where the false accept rate is at most ``far``."""
    if len(genuine) == 0 or len(impostor) == 0:
        return float("nan")
    fpr, tpr, _ = roc if roc is not None else roc_points(genuine, impostor)
    ok = fpr <= far
    return float(tpr[ok].max()) if ok.any() else 0.0


def verification_metrics(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> dict[str, float]:
    """1:1 verification at ``threshold`` over genuine and impostor similarity scores.

    accuracy, precision, recall (TAR), F1, FAR at the threshold, ROC AUC, TAR at FAR (the false-match rate of
    one comparison, FMR) 1e-2, 1e-3, 1e-4 and 1e-5 (0 where too few impostor pairs measure the rate: fewer
    than one in ``1/far``).
    """
    genuine, impostor = np.asarray(genuine, float), np.asarray(impostor, float)
    tp = int((genuine >= threshold).sum())
    fp = int((impostor >= threshold).sum())
    fn, tn = len(genuine) - tp, len(impostor) - fp
    both = len(genuine) > 0 and len(impostor) > 0
    roc = roc_points(genuine, impostor) if both else None
    n = len(genuine) + len(impostor)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / len(genuine) if len(genuine) else float("nan")
    return {
        "pairs_genuine": int(len(genuine)),
        "pairs_impostor": int(len(impostor)),
        "accuracy": (tp + tn) / n if n else float("nan"),
        "precision": float(precision) if len(genuine) else float("nan"),
        "recall": float(recall),
        "f1": (float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0) if len(genuine) else float("nan"),
        "far": fp / len(impostor) if len(impostor) else float("nan"),
        "roc_auc": float(_skm().auc(roc[0], roc[1])) if both else float("nan"),
        "tar_at_far_1e-2": tar_at_far(genuine, impostor, 1e-2, roc),
        "tar_at_far_1e-3": tar_at_far(genuine, impostor, 1e-3, roc),
        "tar_at_far_1e-4": tar_at_far(genuine, impostor, 1e-4, roc),
        "tar_at_far_1e-5": tar_at_far(genuine, impostor, 1e-5, roc),
    }


def dir_at_fpir(true_ids: np.ndarray, pred_ids: np.ndarray, best: np.ndarray, in_gallery: np.ndarray,
                fpir: float) -> float:
    """The detection-and-identification rate at the threshold that accepts at most ``fpir`` of the open-set
    probes (strangers): NaN without both kinds of probe, or with too few strangers to measure ``fpir``."""
    strangers = np.sort(best[~in_gallery])[::-1]
    k = int(np.floor(fpir * len(strangers)))
    if not in_gallery.any() or k >= len(strangers) or len(strangers) < 1 / fpir:
        return float("nan")
    t = strangers[k]  # accepting scores above it lets k strangers in
    known = in_gallery
    return float(((pred_ids[known] == true_ids[known]) & (best[known] > t)).mean())


def identification_metrics(
    true_ids: Sequence[str],
    pred_ids: Sequence[str],
    best_sim: Sequence[float],
    in_gallery: Sequence[bool],
    threshold: float,
) -> dict[str, Any]:
    """Closed- and open-set identification figures.

    Closed set (probes whose identity is in the gallery): top-1 accuracy and macro-F1 over identities of
    the rank-1 prediction, and the detection-and-identification rate (rank-1 right and accepted at
    ``threshold``). Open set (probes whose identity is not in the gallery): the false positive
    identification rate (accepted anyway); a rejection counts as correct in ``open_set_accuracy``,
    which covers every probe.
    """
    t = np.asarray(true_ids, dtype=object)
    p = np.asarray(pred_ids, dtype=object)
    s = np.asarray(best_sim, dtype=float)
    g = np.asarray(in_gallery, dtype=bool)
    accepted = s >= threshold
    closed = int(g.sum())
    out: dict[str, Any] = {"probes": int(len(t)), "probes_in_gallery": closed, "probes_open_set": int((~g).sum())}
    if closed:
        correct = p[g] == t[g]
        out["top1_accuracy"] = float(correct.mean())
        out["macro_f1"] = float(
            _skm().f1_score(t[g].astype(str), p[g].astype(str), labels=np.unique(t[g].astype(str)),
                         average="macro", zero_division=0)
        )
        out["detection_identification_rate"] = float((correct & accepted[g]).mean())
    else:
        out["top1_accuracy"] = out["macro_f1"] = out["detection_identification_rate"] = float("nan")
    out["fpir"] = float(accepted[~g].mean()) if (~g).any() else float("nan")
    for rate in (0.01, 0.001):  # threshold-free open set: DIR where the strangers' best scores give this FPIR
        out[f"dir_at_fpir_{rate:g}"] = dir_at_fpir(t, p, s, g, rate)
    right = np.where(g, (p == t) & accepted, ~accepted)
    out["open_set_accuracy"] = float(right.mean()) if len(t) else float("nan")
    return out


def clustering_metrics(truth: Sequence[str], pred: Sequence[Any]) -> dict[str, Any]:
    """BCubed and pairwise precision, recall and F of a clustering against the true identities, and the numbers
    of clusters and people. ``pred`` None (an item in no cluster) counts as a cluster of its own.

    BCubed (Amigó et al. 2009) averages over items: an item's precision is the share of its cluster that is
    its person, its recall the share of its person that is in its cluster. Pairwise counts pairs of items put
    together (precision) and pairs of one person kept together (recall). Also returns the per-item BCubed
    values (``_precision``, ``_recall``) so that a caller can average them over a subset (one distortion).
    """
    import pandas as pd
    t = pd.factorize(pd.Series(list(truth), dtype=object))[0]
    raw = pd.Series(list(pred), dtype=object)
    alone = raw.isna().to_numpy()
    p = pd.factorize(raw.where(~alone, None))[0]
    p[alone] = p.max(initial=-1) + 1 + np.arange(alone.sum())

    def sizes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each item's group size, and every group's size."""
        _, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
        return counts[inverse].astype(float), counts.astype(float)

    (n_joint, c_joint), (n_pred, c_pred), (n_true, c_true) = sizes(t * (p.max(initial=0) + 1) + p), sizes(p), sizes(t)
    prec, rec = n_joint / n_pred, n_joint / n_true

    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) / 2).sum())

    together, pred_pairs, true_pairs = pairs(c_joint), pairs(c_pred), pairs(c_true)
    pp = together / pred_pairs if pred_pairs else 1.0
    pr = together / true_pairs if true_pairs else 1.0
    bp, br = float(prec.mean()) if len(prec) else 0.0, float(rec.mean()) if len(rec) else 0.0
    return {"n": len(t), "people": int(len(set(t))), "clusters": int(len(set(p))),
            "bcubed_precision": bp, "bcubed_recall": br, "bcubed_f": _f(bp, br),
            "pairwise_precision": pp, "pairwise_recall": pr, "pairwise_f": _f(pp, pr),
            "_precision": prec, "_recall": rec}


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0
