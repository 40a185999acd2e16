"""Result tables on disk: CSV files written atomically whose cells never start a spreadsheet formula.

A file or identity name such as ``=HYPERLINK(...)`` or ``@SUM(1)`` would run as a formula when the CSV is
opened in a spreadsheet (CSV injection). As OWASP recommends, every text cell that begins with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is written with a leading ``'``, which spreadsheets show
as text; numbers are left alone. ``raw=True`` (the CLI's ``--raw-csv``) writes the values as they are.
"""

from __future__ import annotations

import os

import pandas as pd

from facecli.atomic import write_with

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells that would start a formula begin with ``'`` (index included)."""

    def cell(v: object) -> object:
        return "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v

    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(cell)
    if out.index.dtype == object:
        out.index = out.index.map(cell)
    out.columns = [cell(c) for c in out.columns]
    return out


def write_csv(out: str | os.PathLike[str], table: pd.DataFrame, *, raw: bool = False, index: bool = False) -> None:
    """Write ``table`` as CSV to ``out`` atomically; formulas neutralised unless ``raw``."""
    t = table if raw else neutralise_formulas(table)
    write_with(out, lambda tmp: t.to_csv(tmp, index=index))
