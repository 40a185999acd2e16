"""Result tables on disk, written atomically: CSV (whose cells never start a spreadsheet formula), Parquet and
JSON lines, chosen by the output file's extension, and joined from parts by streamed runs.

A file or identity name such as ``=HYPERLINK(...)`` or ``@SUM(1)`` would run as a formula when the CSV is
opened in a spreadsheet (CSV injection). As OWASP recommends, every text cell that begins with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is written with a leading ``'``, which spreadsheets show
as text; numbers are left alone. ``raw=True`` (the CLI's ``--raw-csv``) writes the values as they are.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from facecli.atomic import _json_default, strict_json, write_with
from facecli.errors import FacecliError

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells that would start a formula begin with ``'`` (index included)."""
    import pandas as pd

    def cell(v: object) -> object:
        return "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v

    out = table.copy()
    for col in out.columns:
        if col in NUMBER_COLUMNS:  # numbers written as text ("-25 101 184 311"): a leading - is no formula here
            continue
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(cell)
    if out.index.dtype == object:
        out.index = out.index.map(cell)
    out.columns = [cell(c) for c in out.columns]
    return out


def restore_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`neutralise_formulas` on a CSV read back as text: a cell ``'=x`` is ``=x`` again (so paths open
    and a CSV reads like the JSON lines file of the same run). A name that itself began with ``'`` and a formula
    character reads back without that ``'``."""
    import pandas as pd

    def cell(v: object) -> object:
        return v[1:] if isinstance(v, str) and len(v) > 1 and v[0] == "'" and v[1:].startswith(FORMULA_STARTS) else v

    out = table.copy()
    for col in out.columns:
        if col not in NUMBER_COLUMNS and (out[col].dtype == object or pd.api.types.is_string_dtype(out[col])):
            out[col] = out[col].map(cell)
    out.columns = [cell(c) for c in out.columns]
    return out


def write_csv(out: str | os.PathLike[str], table: pd.DataFrame, *, raw: bool = False, index: bool = False) -> None:
    """Write ``table`` as CSV to ``out`` atomically (whatever its extension); formulas neutralised unless
    ``raw``."""
    t = table if raw else neutralise_formulas(table)
    # rows end in CR LF (RFC 4180), so that Python's csv module, which pandas writes with, quotes every cell that
    # holds a CR or LF: with a bare LF ending, a CR inside a name was written unquoted and every reader split
    # the row there (a name "x\r=SUM(A1)" became a cell "=SUM(A1)": a formula)
    write_with(out, lambda tmp: t.to_csv(tmp, index=index, lineterminator="\r\n"))


# ------------------------------------------------------------------ formats by extension

FORMATS = (".csv", ".parquet", ".jsonl")
# columns that hold lists: CSV keeps them as text (JSON lists, or space-separated numbers); Parquet and
# JSON lines carry real lists
JSON_LISTS = ("top_k", "top_k_similarity")
NUMBER_LISTS = {"box": int, "landmarks": float}
# the type of every number or true/false column, whatever a part holds (a part of failed files holds blanks)
COLUMN_TYPES = {"face": "Int64", "p_female": "Float64", "similarity": "Float64", "accepted": "boolean",
                "in_gallery": "boolean", "cluster": "Int64", "cluster_size": "Int64", "confidence": "Float64"}
NUMBER_COLUMNS = {*NUMBER_LISTS, "top_k_similarity", *COLUMN_TYPES}


def output_format(out: str | os.PathLike[str], option: str = "--out") -> str:
    """The output format named by ``out``'s extension (.csv, .parquet, .jsonl); FacecliError for any other."""
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise FacecliError(f"{option} {out}: unknown output format {suffix or '(no extension)'!r}; use "
                           f"{', '.join(FORMATS)}")
    if suffix == ".parquet":
        require_pyarrow()
    return suffix


def require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise FacecliError("Parquet output needs pyarrow: pip install 'facecli[parquet]'") from None


def typed(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` as Parquet and JSON lines carry it: list columns as lists, and empty cells of number or
    true/false columns (rows of files that failed) as nulls."""
    import pandas as pd
    out = table.copy()
    for col in out.columns:
        if col in JSON_LISTS:
            out[col] = [json.loads(v) if isinstance(v, str) and v else None for v in out[col]]
        elif col in NUMBER_LISTS:
            cast = NUMBER_LISTS[col]
            out[col] = [[cast(float(x)) for x in v.split()] if isinstance(v, str) and v else None for v in out[col]]
        elif col in COLUMN_TYPES:
            out[col] = pd.array([None if _blank(v) else v for v in out[col]], dtype=COLUMN_TYPES[col])
        elif out[col].dtype == object:
            vals = [v for v in out[col] if not _blank(v)]
            if vals and not any(isinstance(v, str) for v in vals):
                kind = ("boolean" if all(isinstance(v, bool | np.bool_) for v in vals) else
                        "Int64" if all(isinstance(v, int | np.integer) for v in vals) else "Float64")
                out[col] = pd.array([None if _blank(v) else v for v in out[col]], dtype=kind)
    return out


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, str) and v == "") or (isinstance(v, float) and math.isnan(v))


def write_table(out: str | os.PathLike[str], table: pd.DataFrame, *, raw: bool = False) -> None:
    """Write ``table`` to ``out`` atomically in the format its extension names. CSV cells that would start a
    formula are neutralised unless ``raw``; Parquet and JSON lines keep raw values and real lists."""
    fmt = output_format(out)
    if fmt == ".csv":
        write_csv(out, table, raw=raw)
    elif fmt == ".jsonl":
        records = typed(table).to_dict(orient="records")
        text = "".join(json.dumps(strict_json(r), ensure_ascii=False, default=_json_default) + "\n" for r in records)
        write_with(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(typed(table), preserve_index=False)
        write_with(out, lambda tmp: pq.write_table(arrow, tmp))


def assemble(parts: list[Path], out: str | os.PathLike[str]) -> None:
    """Join part files written by :func:`write_table` (CSV parts with a header each) into ``out``, atomically,
    one part at a time (memory does not grow with the number of parts)."""
    fmt = output_format(out)
    if fmt == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schemas = [pq.read_schema(p).remove_metadata() for p in parts]
        schema = pa.unify_schemas(schemas, promote_options="permissive") if parts else pa.schema([])

        def join(tmp: Path) -> None:
            with pq.ParquetWriter(tmp, schema) as w:
                for p in parts:
                    w.write_table(pq.read_table(p).cast(schema))
    else:

        def join(tmp: Path) -> None:
            with open(tmp, "wb") as dst:
                for k, p in enumerate(parts):
                    with open(p, "rb") as src:
                        if fmt == ".csv" and k > 0:
                            src.readline()  # every CSV part has the header; keep the first one only
                        shutil.copyfileobj(src, dst, 1 << 20)
    write_with(out, join)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A results file written by facecli, in any of its formats (CSV cells as text, blanks as "")."""
    import pandas as pd
    fmt = output_format(path, "file")
    if fmt == ".csv":
        table = pd.read_csv(path, keep_default_na=False, dtype=str)
        return restore_formulas(table)
    if fmt == ".jsonl":
        return pd.read_json(path, orient="records", lines=True, dtype=False, precise_float=True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    # nullable pandas types, so that whole numbers with blanks (rows of failed files) stay whole numbers
    nullable = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(), pa.float64(): pd.Float64Dtype()}
    return pq.read_table(path).to_pandas(types_mapper=nullable.get)


def read_results_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A results file written by facecli as the same values whatever its format: the list columns (``box``,
    ``landmarks``, ``top_k``, ``top_k_similarity``) as Python lists (None where blank), the number and true/false
    columns of :data:`COLUMN_TYPES` as nullable pandas types (``<NA>`` for rows of files that failed), text as
    it was written (CSV's formula guard undone)."""
    import pandas as pd
    fmt = output_format(path, "file")
    table = read_table(path)
    for col in table.columns:
        if col in JSON_LISTS or col in NUMBER_LISTS:
            table[col] = pd.Series([_as_list(v, col) for v in table[col]], index=table.index, dtype=object)
        elif col in COLUMN_TYPES:
            table[col] = _as_type(table[col], COLUMN_TYPES[col], text=fmt == ".csv")
    return table


def _as_list(v: object, col: str) -> list | None:
    if isinstance(v, str):
        if not v:
            return None
        if col in JSON_LISTS:
            return json.loads(v)
        cast = NUMBER_LISTS[col]
        return [cast(float(x)) for x in v.split()]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return np.asarray(v).tolist()


def _as_type(column: pd.Series, dtype: str, text: bool) -> pd.api.extensions.ExtensionArray:
    import pandas as pd
    if not text:
        return pd.array([None if _blank(v) else v for v in column], dtype=dtype)
    if dtype == "boolean":
        return pd.array([None if v == "" else v == "True" for v in column], dtype=dtype)
    numbers = pd.to_numeric(column.replace("", None), errors="coerce")
    return pd.array([None if pd.isna(v) else v for v in numbers], dtype=dtype)
