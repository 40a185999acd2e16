"""Which identity threshold applies to a question, where it came from, and what it means for this gallery.

``verify`` asks a 1:1 question and takes a target false-match rate (``--fmr``); ``match`` asks a 1:N one and
takes a target share of strangers accepted (``--fpir``) with the gallery's size; both go through the model's
:class:`facecli.calibration.FalseMatchCurve`. A raw ``--threshold`` and a gallery's calibrated threshold are
still honoured, and every decision says what it means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from facecli.calibration import FalseMatchCurve, fpir_of, per_comparison_fmr
from facecli.card import ModelCard, resolve_threshold
from facecli.errors import FacecliError

DEFAULT_FMR = 1e-3  # verify: one false match in a thousand different-person pairs
DEFAULT_FPIR = 0.01  # match: one stranger in a hundred accepted, whatever the gallery's size


@dataclass(frozen=True)
class Decision:
    """The threshold that applies to a question, where it came from, and what it means.

    threshold: a score on the model's scale (a cosine for a model without one).
    source: where it came from, in words (``given``, ``--fmr 0.001``, ``--fpir 1% for 1,609 gallery photos``,
        ``calibrated on ...``, ``model: ...``).
    fmr: the per-comparison false-match rate at the threshold (None: the model has no false-match curve).
    fpir: for ``match``, the share of strangers the threshold accepts for this gallery (None for ``verify``
        or without a curve).
    comparisons: the gallery's photos (vectors) a stranger is compared with; 1 for ``verify``.
    """

    threshold: float
    source: str
    fmr: float | None = None
    fpir: float | None = None
    comparisons: int = 1

    def rows(self) -> list[tuple[str, Any]]:
        """Summary rows: the threshold, its source and, where known, what it means."""
        rows: list[tuple[str, Any]] = [("threshold", round(self.threshold, 6)), ("threshold from", self.source)]
        if self.fmr is not None:
            rows.append(("false-match rate of one comparison (FMR)", _rate(self.fmr)))
        if self.fpir is not None:
            rows.append((f"strangers accepted for {self.comparisons:,} gallery photos (FPIR)", _rate(self.fpir)))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "threshold_source": self.source, "fmr": self.fmr, "fpir": self.fpir,
                "comparisons": self.comparisons}


def _rate(x: float) -> str:
    return f"{x:.2%}" if x >= 1e-3 else f"{x:.1e}"


def _check_rate(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FacecliError(f"{name} must be a number in (0, 1), not {value!r}") from None
    if not (math.isfinite(v) and 0.0 < v < 1.0):
        raise FacecliError(f"{name} must lie in (0, 1), not {value}")
    return v


def decide(card: ModelCard, *, threshold: float | None = None, fmr: float | None = None, fpir: float | None = None,
           comparisons: int | None = None, stored: tuple[float, str] | None = None) -> Decision:
    """The threshold for a 1:1 question (``comparisons`` None) or a match against a gallery of ``comparisons``
    photos, in this order of precedence:

    1. ``threshold``: a raw score the caller gave (``--threshold``);
    2. ``fmr`` (1:1) or ``fpir`` (1:N) the caller gave, through the model's false-match curve;
    3. ``stored``: a threshold calibrated on the caller's own data and kept with the gallery (``calibrate``);
    4. the default question: FMR :data:`DEFAULT_FMR` for 1:1, FPIR :data:`DEFAULT_FPIR` for 1:N;
    5. for a model without a false-match curve, its card's validation-tuned threshold (or 0.5).

    FacecliError for a rate outside (0, 1), an ``fpir`` for a 1:1 question or an ``fmr`` for a gallery.
    """
    fmr, fpir = _check_rate("fmr", fmr), _check_rate("fpir", fpir)
    one = comparisons is None
    if one and fpir is not None:
        raise FacecliError("fpir applies to a match against a gallery; a 1:1 question takes fmr")
    if not one and fmr is not None:
        raise FacecliError("fmr applies to a 1:1 question; a match against a gallery takes fpir (the share of "
                           "strangers accepted)")
    n = 1 if one else max(int(comparisons), 1)
    curve: FalseMatchCurve | None = getattr(card, "false_match", None)

    def meaning(t: float, source: str) -> Decision:
        if curve is None:  # an older card: its stranger curve, measured for its validation gallery, if any
            return Decision(t, source, None, None if one else card.strangers_accepted(t), n)
        f = curve.fmr(t)
        return Decision(t, source, f, None if one else fpir_of(f, n), n)

    if threshold is not None:
        t, _ = resolve_threshold(card, threshold)
        return meaning(t, "given")
    if curve is not None and (fmr is not None or fpir is not None or stored is None):
        if one:
            target = DEFAULT_FMR if fmr is None else fmr
            how = "--fmr" if fmr is not None else "default FMR"
            return meaning(curve.score_at(target),
                           f"{how} {target:g} (the model's false-match curve{curve.note(target)})")
        target = DEFAULT_FPIR if fpir is None else fpir
        how = "--fpir" if fpir is not None else "default FPIR"
        per = per_comparison_fmr(target, n)
        return meaning(curve.score_at(per), f"{how} {target:.2%} for {n:,} gallery photos (the model's false-match "
                                            f"curve{curve.note(per)})")
    if stored is not None:
        return meaning(float(stored[0]), stored[1])
    t, source = resolve_threshold(card)
    return meaning(t, source)
