"""What an identity score means for the question asked: one comparison (``verify``) or one probe against a
gallery of many photos (``match``).

An identity model's card keeps a :class:`FalseMatchCurve`: for scores on its scale, the false-match rate
(FMR) of *one* comparison, the share of different-person pairs that reach the score, measured on held-out
people. A decision then follows from the question:

- ``verify`` (1:1) asks for a target FMR: the threshold is the score whose FMR is that target.
- ``match`` (1:N) asks for a target false positive identification rate (FPIR, the share of strangers
  accepted). A stranger is compared with every photo in the gallery, so it gets ``n`` chances: the
  threshold is the score whose per-comparison FMR ``f`` gives ``1 - (1 - f) ** n = FPIR``. On held-out
  people (a gallery of 1,609 photos of 750 people) this rule with ``n`` = photos gave an FPIR of 1.01% for a
  target of 1% (with ``n`` = identities, 2.5%), so ``n`` counts the gallery's vectors.

:func:`facecli.decision.decide` resolves which threshold applies and what it means; nothing else does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FalseMatchCurve:
    """Per-comparison false-match rate against score, measured on held-out people.

    points: (score, fmr) pairs, scores increasing and rates decreasing; between points log10(fmr) is
        interpolated linearly in logit(score), from (0, 1) below the lowest point. Above the highest score it
        falls on along a line fitted to the last measured decade (an extrapolation: a decision that needs a
        rate below :attr:`lowest_fmr` says so).
    fitted_on: the data, split, pairs and N it was measured on, in words.
    """

    points: tuple[tuple[float, float], ...]
    fitted_on: str = ""

    def __post_init__(self) -> None:
        pts = self.points
        if len(pts) < 2:
            raise ValueError("a false-match curve needs at least two points")
        s = [p[0] for p in pts]
        f = [p[1] for p in pts]
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in s):
            raise ValueError("false-match curve scores must lie in [0, 1]")
        if not all(math.isfinite(v) and 0.0 < v <= 1.0 for v in f):
            raise ValueError("false-match rates must lie in (0, 1]")
        if any(b <= a for a, b in zip(s, s[1:], strict=False)) or any(b > a for a, b in zip(f, f[1:], strict=False)):
            raise ValueError("a false-match curve's scores must increase and its rates must not")

    @property
    def _xy(self) -> tuple[np.ndarray, np.ndarray, float]:
        """logit(score) and log10(rate) of (0, 1) and the points, and the last segment's slope (rates fall
        along it beyond the last point: linear in logit(score), as the log-logistic score scale is in
        log(1 - cosine), where impostor tails fall about linearly)."""
        s = [p[0] for p in self.points]
        lf = [math.log10(p[1]) for p in self.points]
        if s[0] > 0:
            s, lf = [0.0, *s], [0.0, *lf]
        x, lf = _logit(np.array(s)), np.array(lf)
        # the tail's slope: a least-squares line through the points of the last measured decade (a single last
        # segment rests on a handful of pairs)
        tail = lf <= lf[-1] + 1.0
        if tail.sum() < 2:
            tail[-2:] = True
        slope = float(np.polyfit(x[tail], lf[tail], 1)[0]) if np.ptp(x[tail]) > 0 else -1e-6
        return x, lf, min(slope, -1e-6)

    def fmr(self, score: float) -> float:
        """The share of different-person comparisons whose score reaches ``score``."""
        x, lf, slope = self._xy
        v = float(_logit(np.array([float(score)]))[0])
        if v > x[-1]:
            return float(10 ** max(lf[-1] + slope * (v - x[-1]), -300.0))
        return float(10 ** np.interp(v, x, lf))

    def score_at(self, fmr: float) -> float:
        """The lowest score whose per-comparison false-match rate is at most ``fmr`` (extrapolated when ``fmr`` is
        below every rate measured)."""
        x, lf, slope = self._xy
        target = math.log10(max(float(fmr), 1e-300))
        if target >= lf[0]:
            v = float(x[0])
        elif target < lf[-1]:
            v = float(x[-1] + (target - lf[-1]) / slope)
        else:
            v = float(np.interp(-target, -lf, x))  # lf decreases: interpolate on its negation
        return float(1.0 / (1.0 + math.exp(-min(max(v, -700.0), 700.0))))

    @property
    def lowest_fmr(self) -> float:
        """The smallest false-match rate the curve was measured down to (below it, rates are extrapolated)."""
        return float(self.points[-1][1])

    def note(self, fmr: float) -> str:
        """"" when ``fmr`` was measured; else a note that it is extrapolated (for a decision's source)."""
        return "" if fmr >= self.lowest_fmr else f"; extrapolated below the {self.lowest_fmr:.1e} measured"

    def to_dict(self) -> dict[str, Any]:
        return {"points": [list(p) for p in self.points], "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, d: Any) -> FalseMatchCurve | None:
        """Read :meth:`to_dict` output; None for None; ValueError for anything else malformed."""
        if d is None:
            return None
        if not isinstance(d, dict) or not isinstance(d.get("points"), list):
            raise ValueError("false_match must be an object with a list of points")
        pts = tuple((float(a), float(b)) for a, b in d["points"])
        return cls(pts, str(d.get("fitted_on") or ""))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-12, 1.0 - 1e-12)
    return np.log(q / (1.0 - q))


def per_comparison_fmr(fpir: float, n: int) -> float:
    """The per-comparison false-match rate at which a stranger compared with ``n`` photos is accepted with
    probability ``fpir`` (comparisons taken as independent: 1 - (1 - f) ** n = fpir)."""
    n = max(int(n), 1)
    return float(-math.expm1(math.log1p(-fpir) / n))


def fpir_of(fmr: float, n: int) -> float:
    """The share of strangers accepted by a gallery of ``n`` photos when one comparison's FMR is ``fmr``."""
    return float(-math.expm1(max(int(n), 1) * math.log1p(-min(fmr, 1.0 - 1e-16))))


def fit_curve(impostor: np.ndarray, rates: Sequence[float], fitted_on: str = "") -> FalseMatchCurve:
    """A :class:`FalseMatchCurve` from different-person scores: for each of ``rates`` (decreasing) that the
    sample can measure (at least 10 pairs above it), the score that at most that share of pairs reaches."""
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    pts: list[tuple[float, float]] = []
    for r in sorted(rates, reverse=True):
        k = int(math.floor(r * len(imp)))
        if k < 10 or k >= len(imp):
            continue
        s = math.floor(imp[k] * 1e6) / 1e6 + 1e-6  # on a 1e-6 grid, just above the (k+1)-th highest pair
        if s > 1.0 or (pts and s <= pts[-1][0]):
            continue
        real = float((imp >= s).mean())
        pts.append((round(s, 6), max(real, 1.0 / len(imp))))
    if len(pts) < 2:
        raise ValueError("too few different-person pairs to measure a false-match curve")
    # rounding can make a later rate exceed an earlier one only by float noise: keep them non-increasing
    out = [pts[0]]
    for s, r in pts[1:]:
        out.append((s, min(r, out[-1][1])))
    return FalseMatchCurve(tuple(out), fitted_on)
