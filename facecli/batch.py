"""Streamed, resumable batch runs: inputs go through in parts (``part_size`` inputs each), and each part's rows
are written as a durable, atomic file while the run goes on, so memory stays flat whatever the number of files
and a kill loses at most the part in flight.

While a run writes ``results.csv`` its parts live in ``results.csv.partial/`` (``run.json``: what the run
is; ``part-<k>.<ext>`` and ``part-<k>.json``: part k's rows and its summary counts, the JSON written last,
so a part counts only when both are there). When every part is done they are joined into
``results.csv`` in one atomic step and the folder is removed. ``resume=True`` continues a killed run into
the same output: parts already written are skipped (their inputs are checked to be the same files), the
rest processed, and the result is exactly what an uninterrupted run gives.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from facecli.atomic import write_json
from facecli.errors import FacecliError
from facecli.inputs import Named, check_sources, in_parts, iter_inputs
from facecli.options import PART_SIZE, RunOptions
from facecli.outputs import assemble, output_format, write_table

PARTIAL = ".partial"
Rows = list[tuple[str, Any]]
# process(a part's inputs) -> (the part's rows, its summary rows)
Process = Callable[[list[Named]], tuple["pd.DataFrame", Rows]]  # pandas is imported where tables are made
# a map over (part number, the part's inputs) -> (part number, rows, summary rows), in part order (the engine)
Mapper = Callable[[Iterable[tuple[int, list[Named]]]], Iterator[tuple[int, "pd.DataFrame", Rows]]]


@dataclass(frozen=True)
class Output:
    """Where and how a table run writes, beside :class:`~facecli.options.RunOptions` (how each image is run):
    ``path`` (.csv, .parquet or .jsonl), ``raw`` (CSV cells that would start a formula kept as they are),
    ``resume`` (continue a killed run into ``path``), ``part_size`` (inputs a durable part)."""

    path: str | os.PathLike[str]
    raw: bool = False
    resume: bool = False
    part_size: int = PART_SIZE

    def __post_init__(self) -> None:
        from facecli.validate import check_int

        output_format(self.path)
        check_int("part_size", self.part_size, 1, 1_000_000)


class TableRun:
    """What a table verb (classify, match, cluster) returns besides its own figures: ``table``, one row per
    face or probe (None for a run streamed into a file), and ``streamed``, what such a run wrote. Subclasses
    (dataclasses) declare both fields; this gives them :attr:`all_failed` and :meth:`write`."""

    table: pd.DataFrame | None
    streamed: Streamed | None

    @property
    def all_failed(self) -> bool:
        """True when there was input and every one of it failed (the CLI then exits with status 1)."""
        from facecli.summary import all_failed

        return self.streamed.all_failed if self.streamed is not None else all_failed(self.table)

    def write(self, out: str | os.PathLike[str], raw: bool = False) -> Path:
        """Write the table to ``out`` (.csv, .parquet or .jsonl) atomically, checked first (never over a folder
        or an image); CSV text cells that would start a spreadsheet formula get a leading ``'`` unless ``raw``
        (:mod:`facecli.outputs`). FacecliError for a streamed run (its rows are already in its file)."""
        from facecli.atomic import check_output_file

        out = Path(out)
        if self.table is None:
            where = self.streamed.out if self.streamed is not None else "a file"
            raise FacecliError(f"this run was streamed into {where}; read it with facecli.read_results")
        check_output_file(out)
        write_table(out, self.table, raw=raw)
        return out


def run_job(job: Any, sources: Sequence[str | os.PathLike[str]], output: Output, info: dict[str, Any],
            options: RunOptions, parts_as: Parts | None = None) -> Streamed:
    """Run ``job`` (a picklable callable: a part's inputs -> rows and summary rows) over path ``sources``,
    streamed into ``output`` on the engine ``options`` names (local threads, or Ray Data actors), and return
    what was written. The output is checked before any work: writable, not one of the inputs, no Ray
    ``address`` without the Ray engine."""
    from facecli.atomic import check_output_file

    if options.address and options.engine != "ray":
        raise FacecliError("address is the Ray cluster for engine='ray'; add engine='ray'")
    check_output_file(output.path, inputs=[s for s in sources if os.fspath(s) != "-"])
    kw = {"resume": output.resume, "raw": output.raw, "part_size": output.part_size, "parts_as": parts_as}
    if options.engine != "ray":
        return run_streamed(sources, local_mapper(job), output.path, info, options, **kw)
    from facecli.engines import ray_mapper  # Ray is an optional extra: imported only for a Ray run

    mapper = ray_mapper(job, options)  # joins the cluster now: an unreachable one fails before any output
    try:
        return run_streamed(sources, mapper, output.path, info, options, **kw)
    finally:
        mapper.close()


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
    """Summary rows of two parts as one: counts (whole numbers) add up, anything else takes ``b``'s value."""
    merged = dict(a)
    for name, v in b:
        old = merged.get(name)
        counts = isinstance(v, int) and not isinstance(v, bool) and isinstance(old, int) and not isinstance(old, bool)
        merged[name] = old + v if counts else v
    return list(merged.items())


def local_mapper(process: Process) -> Mapper:
    """This process, one part after another."""

    def run(todo: Iterable[tuple[int, list[Named]]]) -> Iterator[tuple[int, pd.DataFrame, Rows]]:
        for k, inputs in todo:
            table, rows = process(inputs)
            yield k, table, rows

    return run


def partial_folder(out: Path) -> Path:
    return out.with_name(out.name + PARTIAL)


@dataclass(frozen=True)
class Parts:
    """How a run keeps its parts and makes its output: ``write(path, table)`` writes one part's rows (default:
    its rows in the output's format), ``join(parts, out)`` makes the output from every part in order (default:
    concatenated), and ``suffix`` is the parts' extension (default: the output's). A table verb whose output
    needs all rows at once (``cluster``) keeps what it needs in its parts and joins them its own way."""

    write: Callable[[Path, pd.DataFrame], None] | None = None
    join: Callable[[list[Path], Path], None] | None = None
    suffix: str | None = None


def run_streamed(sources: Sequence[str | os.PathLike[str]], mapper: Mapper, out: str | os.PathLike[str],
                 run_info: dict[str, Any], run: RunOptions, *, resume: bool = False, raw: bool = False,
                 part_size: int = PART_SIZE, parts_as: Parts | None = None) -> Streamed:
    """Run ``mapper`` over the inputs of ``sources`` part by part (``part_size`` inputs each), writing each part's
    rows beside ``out``, then join the parts into ``out`` (``parts_as`` changes how: :class:`Parts`).

    ``run_info`` says what the run is (command, model, threshold, options): a resumed run must be the same.
    """
    out = Path(out)
    output_format(out)
    check_sources(sources)
    parts = partial_folder(out)
    how = parts_as or Parts()
    info = {"facecli_partial": 3, "part_size": part_size, "raw": raw, "format": out.suffix.lower(), **run_info}
    if how.suffix:
        info["part_format"] = how.suffix
    lock = _open_partial(parts, info, resume)
    try:
        remove_stale_temps(out)
        return _run(parts, info, sources, mapper, out, run, raw, part_size, how)
    finally:
        os.close(lock)


def _run(parts: Path, info: dict[str, Any], sources: Sequence[str | os.PathLike[str]], mapper: Mapper,
         out: Path, run: RunOptions, raw: bool, part_size: int, how: Parts) -> Streamed:
    suffix = how.suffix or info["format"]
    write = how.write or (lambda p, t: write_table(p, t, raw=raw))
    done = _done_parts(parts, suffix)
    res = Streamed(out)
    stream = iter_inputs(sources)
    seen = [0]
    n_parts = [0]
    _count_in_background(sources, run)

    def todo() -> Iterator[tuple[int, list[Named]]]:
        for k, inputs in enumerate(in_parts(stream, part_size)):
            _refuse_the_output(inputs, out)
            seen[0] += len(inputs)
            n_parts[0] = k + 1
            if k in done:
                meta = done[k]
                if meta["names"] != names_digest(inputs) or meta["images"] != len(inputs):
                    raise FacecliError(f"the inputs changed since the interrupted run in {parts} (part {k} was "
                                       f"{meta['first']} ... {meta['last']}); remove {parts} to start again")
                _add(res, meta)
                res.skipped += len(inputs)
                run.advance(len(inputs))
                continue
            firsts[k] = (inputs[0].name, inputs[-1].name, len(inputs), names_digest(inputs))
            yield k, inputs

    firsts: dict[int, tuple[str, str, int, str]] = {}

    for k, table, rows in mapper(todo()):
        first, last, n, names = firsts.pop(k)
        part_file = parts / f"part-{k:08d}{suffix}"
        write(part_file, table)
        meta = {"first": first, "last": last, "images": n, "names": names, "sha256": _file_digest(part_file),
                "rows": len(table), "failed": failed_rows(table), "summary": [[name, v] for name, v in rows]}
        write_json(parts / f"part-{k:08d}.json", meta)  # last: the part now counts as done
        _add(res, meta)
    if seen[0] == 0:
        shutil.rmtree(parts, ignore_errors=True)
        from facecli.inputs import nothing_found

        raise nothing_found(sources)
    files = [parts / f"part-{k:08d}{suffix}" for k in range(n_parts[0])]  # only this run's inputs
    (how.join or assemble)(files, out)
    shutil.rmtree(parts, ignore_errors=True)
    return res


def _refuse_the_output(inputs: list[Named], out: Path) -> None:
    """FacecliError when an input (one named on standard input, say) is the output file itself: the join at the
    end would overwrite it."""
    target = os.path.abspath(out)
    for n in inputs:
        item = n.item
        if getattr(item, "error", None) or not isinstance(item, str | os.PathLike):
            continue
        path = os.fspath(item)
        same = os.path.abspath(path) == target
        if not same and os.path.basename(path) == out.name:
            with contextlib.suppress(OSError):
                same = os.path.samefile(path, out)
        if same:
            raise FacecliError(f"input {n.name} is the --out file {out}: the results would overwrite it; write "
                               "them elsewhere")


def failed_rows(table: pd.DataFrame) -> int:
    """A part's rows of files that failed (a non-empty ``error``)."""
    return int((table["error"].astype(str) != "").sum()) if "error" in table else 0


def _add(res: Streamed, meta: dict[str, Any]) -> None:
    res.images += meta["images"]
    res.rows += meta["rows"]
    res.failed += meta["failed"]
    res.summary = merge_rows(res.summary, [(str(n), v) for n, v in meta["summary"]])


def _open_partial(parts: Path, info: dict[str, Any], resume: bool) -> int:
    """Open (or, for a new run, make) the partial folder and take its lock; returns the lock's descriptor,
    held for the whole run. FacecliError when another run holds it, for a new run over an unfinished one,
    for a resume of nothing, or for a resume with other settings."""
    marker = parts / "run.json"
    if parts.is_symlink():
        raise FacecliError(f"{parts} is a symbolic link: facecli keeps a run's parts only in a folder of its own; "
                           "remove the link")
    if parts.exists():
        fd = _lock_partial(parts)
        try:
            if _never_started(parts):  # a run that failed at its start (full disk, killed): nothing to keep
                if resume:
                    shutil.rmtree(parts, ignore_errors=True)
                    raise FacecliError(f"nothing to resume: the earlier run of {parts.name[:-len(PARTIAL)]} "
                                       "stopped before it wrote anything (its empty folder is removed)")
                write_json(marker, info)
                return fd
            if not resume:
                raise FacecliError(f"{parts} holds an interrupted run of this output: continue it with --resume, "
                                   "or remove that folder to start again")
            try:
                before = json.loads(read_small(marker, 1 << 24))
            except (OSError, ValueError):
                raise FacecliError(f"{parts} is not a facecli partial run (no readable run.json); remove it") from None
            if before != json.loads(json.dumps(info)):
                diff = sorted(OPTION_NAMES.get(k, k) for k in set(before) | set(info) if before.get(k) != info.get(k))
                raise FacecliError(f"the interrupted run in {parts} differs from this one ({', '.join(diff)}); run "
                                   f"it as it was, or remove {parts} to start again")
        except FacecliError:
            os.close(fd)
            raise
        return fd
    if resume:
        raise FacecliError(f"nothing to resume: no interrupted run of {parts.name[:-len(PARTIAL)]} "
                           f"({parts} does not exist)")
    try:
        parts.mkdir(parents=True)
    except FileExistsError:
        raise FacecliError(f"another facecli run is writing {parts.name[:-len(PARTIAL)]} now") from None
    fd = _lock_partial(parts)
    write_json(marker, info)
    return fd


def _never_started(parts: Path) -> bool:
    """True for a partial folder that holds nothing but its lock (the run failed before writing run.json)."""
    return {p.name for p in parts.iterdir()} <= {".lock"}


def read_small(path: Path, cap: int) -> bytes:
    """The bytes of ``path`` when it is a regular file of at most ``cap`` bytes; OSError otherwise, at once (a
    FIFO, device or link in a partial folder is refused, never waited on)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > cap:
            raise OSError(f"{path.name} is not a regular file of at most {cap} bytes")
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(cap + 1)
    finally:
        os.close(fd)


def remove_stale_temps(out: Path) -> None:
    """Remove temporary files of an earlier join into ``out`` that a kill left beside it (``.<name>.*.tmp``).
    Called while holding the partial folder's lock: no other run joins into ``out`` meanwhile."""
    for tmp in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()


OPTION_NAMES = {"facecli_partial": "the facecli release that wrote it", "part_size": "--part-size", "raw": "--raw-csv",
                "format": "the --out format", "sources": "inputs", "detect": "--detect", "restore": "--restore",
                "threshold": "--threshold", "frame": "--frame", "top_k": "--top-k", "engine": "--engine",
                "model": "--model", "gallery": "the gallery", "photo": "--photo"}


def _lock_partial(parts: Path) -> int:
    """Hold the partial folder's lock (released by the kernel if the process dies); FacecliError when another
    live run holds it."""
    fd = os.open(parts / ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FacecliError(f"another facecli run is writing {parts.name[:-len(PARTIAL)]} now (its parts are in "
                           f"{parts}); wait for it to finish") from None
    except ImportError:  # pragma: no cover - not POSIX
        pass
    return fd


def _done_parts(parts: Path, suffix: str) -> dict[int, dict[str, Any]]:
    """Chunk number -> its part's metadata, for parts whose rows and metadata are both on disk."""
    done = {}
    for p in parts.glob("part-*.json"):
        try:
            k = int(p.stem.split("-")[1])
            meta = json.loads(read_small(p, 1 << 24))
            part = parts / f"part-{k:08d}{suffix}"
            if _part_meta_ok(meta) and _file_digest(part) == meta["sha256"]:
                done[k] = meta  # else (missing, truncated or changed) the part runs again: its files are rewritten
        except (ValueError, OSError):
            continue  # unreadable, not a regular file (a FIFO never blocks the run): the part runs again
    return done


def _part_meta_ok(meta: Any) -> bool:
    """A part's metadata has what a resumed run reads: names, whole-number counts and summary rows."""
    if not isinstance(meta, dict):
        return False
    counts = all(isinstance(meta.get(k), int) and not isinstance(meta.get(k), bool) for k in ("images", "rows", "failed"))
    rows = isinstance(meta.get("summary"), list) and all(isinstance(r, list) and len(r) == 2 for r in meta["summary"])
    texts = all(isinstance(meta.get(k), str) for k in ("first", "last", "names", "sha256"))
    return counts and rows and texts


def names_digest(inputs: list[Named]) -> str:
    """SHA-256 of a part's inputs, in order: each one's name and, for a file, its size and modification time
    (a file replaced, rewritten or swapped with another since the interrupted run changes it), so that a
    resumed run checks its inputs are the same files with the same contents."""
    h = hashlib.sha256()
    for n in inputs:
        h.update(n.name.encode("utf-8", "backslashreplace") + b"\0")
        h.update(_content_stamp(n.item).encode() + b"\0")
    return h.hexdigest()


def _content_stamp(item: object) -> str:
    """Size and modification time (ns) of a file; its error for an input that cannot be listed."""
    if getattr(item, "error", None):
        return "unlisted"
    try:
        st = os.stat(os.fspath(item))
    except (OSError, TypeError, ValueError):
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _file_digest(path: Path) -> str:
    """SHA-256 of a regular file (OSError at once for anything else: a FIFO is never waited on)."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        for piece in iter(lambda: fh.read(1 << 20), b""):
            h.update(piece)
    return h.hexdigest()


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
