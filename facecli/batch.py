"""Streamed, resumable batch runs: inputs go through in chunks, and each chunk's rows are written as a durable,
atomic part file while the run goes on, so memory stays flat whatever the number of files and a kill loses
at most the chunk in flight.

While a run writes ``results.csv`` its parts live in ``results.csv.partial/`` (``run.json``: what the run
is; ``part-<k>.<ext>`` and ``part-<k>.json``: chunk k's rows and its summary counts, the JSON written last,
so a part counts only when both are there). When every chunk is done the parts are joined into
``results.csv`` in one atomic step and the folder is removed. ``resume=True`` continues a killed run into
the same output: chunks already written are skipped (their inputs are checked to be the same files), the
rest processed, and the result is exactly what an uninterrupted run gives.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from facecli.atomic import write_json
from facecli.errors import FacecliError
from facecli.inputs import Named, check_sources, chunks, iter_inputs
from facecli.options import RunOptions
from facecli.outputs import assemble, output_format, write_table

PARTIAL = ".partial"
CHUNK = 512  # inputs per durable part
Rows = list[tuple[str, Any]]
# process(chunk) -> (rows of the chunk, summary rows of the chunk)
Process = Callable[[list[Named]], tuple[pd.DataFrame, Rows]]
# a map over (part number, chunk) -> (part number, rows, summary rows), in part order (the engine)
Mapper = Callable[[Iterable[tuple[int, list[Named]]]], Iterator[tuple[int, pd.DataFrame, Rows]]]


@dataclass
class Streamed:
    """The outcome of a streamed run: where it wrote, the inputs, rows and failed rows in the whole output,
    the inputs an earlier (killed) run had done (``skipped``), and the merged summary rows."""

    out: Path
    images: int = 0
    rows: int = 0
    failed: int = 0
    skipped: int = 0
    summary: Rows = field(default_factory=list)

    @property
    def all_failed(self) -> bool:
        return self.rows > 0 and self.failed == self.rows


def merge_rows(a: Rows, b: Rows) -> Rows:
    """Summary rows of two chunks as one: counts (whole numbers) add up, anything else takes ``b``'s value."""
    merged = dict(a)
    for name, v in b:
        old = merged.get(name)
        counts = isinstance(v, int) and not isinstance(v, bool) and isinstance(old, int) and not isinstance(old, bool)
        merged[name] = old + v if counts else v
    return list(merged.items())


def local_mapper(process: Process) -> Mapper:
    """This process, one chunk after another."""

    def run(todo: Iterable[tuple[int, list[Named]]]) -> Iterator[tuple[int, pd.DataFrame, Rows]]:
        for k, chunk in todo:
            table, rows = process(chunk)
            yield k, table, rows

    return run


def partial_folder(out: Path) -> Path:
    return out.with_name(out.name + PARTIAL)


def run_streamed(sources: Sequence[str | os.PathLike[str]], mapper: Mapper, out: str | os.PathLike[str],
                 run_info: dict[str, Any], run: RunOptions, *, resume: bool = False, raw: bool = False,
                 chunk: int = CHUNK, failed: Callable[[pd.DataFrame], int] | None = None,
                 named: Iterable[Named] | None = None) -> Streamed:
    """Run ``mapper`` over the inputs of ``sources`` (or the given ``named`` inputs) chunk by chunk, writing
    each chunk's rows as a part of ``out``, then join the parts into ``out``.

    ``run_info`` says what the run is (command, model, threshold, options): a resumed run must be the same.
    ``failed(table)`` counts a chunk's rows of files that failed (default: non-empty ``error``).
    """
    out = Path(out)
    output_format(out)
    if named is None:
        check_sources(sources)
    parts = partial_folder(out)
    info = {"facecli_partial": 1, "chunk": chunk, "raw": raw, "format": out.suffix.lower(), **run_info}
    _open_partial(parts, info, resume)
    done = _done_parts(parts, info["format"])
    res = Streamed(out)
    count_failed = failed or (lambda t: int((t["error"].astype(str) != "").sum()) if "error" in t else 0)
    stream = named if named is not None else iter_inputs(sources)
    seen = [0]
    n_chunks = [0]
    if named is None:
        _count_in_background(sources, run)

    def todo() -> Iterator[tuple[int, list[Named]]]:
        for k, block in enumerate(chunks(stream, chunk)):
            seen[0] += len(block)
            n_chunks[0] = k + 1
            if named is not None:
                run.total(seen[0])
            if k in done:
                meta = done[k]
                if meta["first"] != block[0].name or meta["last"] != block[-1].name or meta["images"] != len(block):
                    raise FacecliError(f"the inputs changed since the interrupted run in {parts} (part {k} was "
                                       f"{meta['first']} ... {meta['last']}); remove {parts} to start again")
                _add(res, meta)
                res.skipped += len(block)
                run.advance(len(block))
                continue
            firsts[k] = (block[0].name, block[-1].name, len(block))
            yield k, block

    firsts: dict[int, tuple[str, str, int]] = {}

    for k, table, rows in mapper(todo()):
        first, last, n = firsts.pop(k)
        meta = {"first": first, "last": last, "images": n, "rows": len(table), "failed": count_failed(table),
                "summary": [[name, v] for name, v in rows]}
        write_table(parts / f"part-{k:08d}{info['format']}", table, raw=raw)
        write_json(parts / f"part-{k:08d}.json", meta)  # last: the part now counts as done
        _add(res, meta)
    if seen[0] == 0:
        shutil.rmtree(parts, ignore_errors=True)
        from facecli.inputs import nothing_found

        raise nothing_found(sources)
    files = [parts / f"part-{k:08d}{info['format']}" for k in range(n_chunks[0])]  # only this run's inputs
    assemble(files, out)
    shutil.rmtree(parts, ignore_errors=True)
    return res


def _add(res: Streamed, meta: dict[str, Any]) -> None:
    res.images += meta["images"]
    res.rows += meta["rows"]
    res.failed += meta["failed"]
    res.summary = merge_rows(res.summary, [(str(n), v) for n, v in meta["summary"]])


def _open_partial(parts: Path, info: dict[str, Any], resume: bool) -> None:
    marker = parts / "run.json"
    if parts.exists():
        if not resume:
            raise FacecliError(f"{parts} holds an interrupted run of this output: continue it with --resume, or "
                               "remove that folder to start again")
        try:
            before = json.loads(marker.read_text())
        except (OSError, ValueError):
            raise FacecliError(f"{parts} is not a facecli partial run (no readable run.json); remove it") from None
        if before != json.loads(json.dumps(info)):
            diff = sorted(k for k in set(before) | set(info) if before.get(k) != info.get(k))
            raise FacecliError(f"the interrupted run in {parts} differs from this one ({', '.join(diff)}); run it "
                               f"as it was, or remove {parts} to start again")
        return
    if resume:
        raise FacecliError(f"nothing to resume: no interrupted run of {parts.name[:-len(PARTIAL)]} "
                           f"({parts} does not exist)")
    parts.mkdir(parents=True)
    write_json(marker, info)


def _done_parts(parts: Path, suffix: str) -> dict[int, dict[str, Any]]:
    """Chunk number -> its part's metadata, for parts whose rows and metadata are both on disk."""
    done = {}
    for p in parts.glob("part-*.json"):
        try:
            k = int(p.stem.split("-")[1])
            meta = json.loads(p.read_text())
        except (ValueError, OSError):
            continue
        if _part_meta_ok(meta) and (parts / f"part-{k:08d}{suffix}").is_file():
            done[k] = meta  # else the chunk runs again: its part is rewritten
    return done


def _part_meta_ok(meta: Any) -> bool:
    """A part's metadata has what a resumed run reads: names, whole-number counts and summary rows."""
    if not isinstance(meta, dict):
        return False
    counts = all(isinstance(meta.get(k), int) and not isinstance(meta.get(k), bool) for k in ("images", "rows", "failed"))
    rows = isinstance(meta.get("summary"), list) and all(isinstance(r, list) and len(r) == 2 for r in meta["summary"])
    return counts and rows and isinstance(meta.get("first"), str) and isinstance(meta.get("last"), str)


def _count_in_background(sources: Sequence[str | os.PathLike[str]], run: RunOptions) -> None:
    """Count the inputs in a second walk beside the run, so that the progress bar learns its total (and its
    ETA) early; nothing is counted for standard input."""
    if any(os.fspath(s) == "-" for s in sources) or run.on_total is None:
        return

    def count() -> None:
        n = 0
        with contextlib.suppress(Exception):  # only a progress hint: the run itself reports any error
            for n, _ in enumerate(iter_inputs(sources), 1):
                if n % 20000 == 0:
                    run.total(n)
            run.total(n)

    threading.Thread(target=count, daemon=True).start()
