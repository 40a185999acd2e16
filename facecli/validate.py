"""Argument checks shared by the Python API and the CLI: each raises a one-line FacecliError naming the value."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from facecli.errors import FacecliError


def check_choice(name: str, value: Any, allowed: Iterable[str], optional: bool = False) -> None:
    """``value`` must be one of ``allowed`` (or None when ``optional``)."""
    allowed = tuple(allowed)
    if optional and value is None:
        return
    if value not in allowed:
        raise FacecliError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    """``value`` must be an integer in [lo, hi]; returns it as an int."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FacecliError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise FacecliError(f"{name} must be {rng}, not {value}")
    return int(value)


def check_float(name: str, value: Any, lo: float, hi: float) -> float:
    """``value`` must be a finite number in [lo, hi]; returns it as a float."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FacecliError(f"{name} must be a number, not {value!r}") from None
    if not (math.isfinite(v) and lo <= v <= hi):
        raise FacecliError(f"{name} must lie in [{lo:g}, {hi:g}], not {value}")
    return v

