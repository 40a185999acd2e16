"""Gallery folders on disk: one unit, switched atomically, checked before use, locked for writers only.

A gallery folder holds ``gallery.json`` and the data files it names: ``index-<v>.faiss``,
``templates-<v>.npy`` and, with photo evidence, ``photo_vectors-<v>.npy`` and ``thumbnails-<v>.npy``, where
``<v>`` is the version written. ``gallery.json`` records each file's name, size and SHA-256.

- **Writing.** A writer takes the folder's lock (``.lock``, opened without following links), writes every
  data file of a new version (each write checked, flushed and fsynced: a short or failed write is an error),
  then replaces ``gallery.json`` in one rename and fsyncs the folder. A kill or a full disk at any moment
  leaves the old gallery or the new one, never a mix; a failed write removes what it wrote and says so in
  one line. The files of the previous version are kept (a reader may be reading them), older ones removed.
  A writer waiting for another says so in one line and gives up after ``lock_timeout`` seconds.
- **Reading** takes no lock, so readers never wait for writers and read-only folders work: read
  ``gallery.json``, then the files it names (again, if a writer replaced them meanwhile). Every field's
  type, every file's size and checksum, and every array's shape are checked before anything is allocated.
  Flat (exact) indexes are rebuilt from the templates rather than read.
- **Older galleries** (``index.faiss``, ``templates.npy``, no checksums) are read as they are (arrays'
  headers checked against the metadata) and converted to this layout the first time they are written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from facecli.errors import FacecliError

GALLERY_FORMAT = 1
META_FILE, LOCK_FILE = "gallery.json", ".lock"
DATA_FILES = {"index": ".faiss", "templates": ".npy", "photo_vectors": ".npy", "thumbnails": ".npy"}
LEGACY_NAMES = {"index": "index.faiss", "templates": "templates.npy", "photo_vectors": "photo_vectors.npy",
                "thumbnails": "thumbnails.npy"}
LOCK_TIMEOUT = 30.0  # seconds a writer waits for another before giving up
META_CAP = 1 << 30  # the largest gallery.json read (about 30 million identity rows)
READ_ATTEMPTS = 3  # a reader re-reads gallery.json this many times when a writer replaced its files meanwhile


# ------------------------------------------------------------------ durable writes


def durable_write(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data``: every byte written and checked, then fsynced; OSError on any failure."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            if n <= 0:
                raise OSError(28, "short write")
            view = view[n:]
        os.fsync(fd)
        if os.fstat(fd).st_size != len(data):
            raise OSError(5, f"{path.name} holds {os.fstat(fd).st_size} bytes, not {len(data)}")
    finally:
        os.close(fd)


def durable_replace(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` in one rename, after a checked, fsynced write; then fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        durable_write(tmp, data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


# ------------------------------------------------------------------ the writer lock


@contextlib.contextmanager
def writer_lock(folder: Path, timeout: float = LOCK_TIMEOUT,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the gallery's writer lock (POSIX ``flock`` on ``.lock``, released by the kernel if the process
    dies). Waits at most ``timeout`` seconds for another writer, saying so once through ``on_wait``
    (default: a line on stderr); FacecliError when it gives up, when ``.lock`` is a link, or when the folder
    cannot be written."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = folder / LOCK_FILE
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if path.is_symlink():
            raise FacecliError(f"gallery {folder}: {LOCK_FILE} is a symbolic link; remove it") from None
        raise FacecliError(f"cannot lock gallery {folder} for writing ({exc.strerror or exc})") from None
    try:
        deadline = time.monotonic() + timeout
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise FacecliError(f"gallery {folder} is being written by another process; gave up after "
                                       f"{timeout:g} s (--lock-timeout)") from None
                if not said:
                    (on_wait or _say)(f"waiting for another writer of gallery {folder} (up to {timeout:g} s)")
                    said = True
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ write and read a version


def write_version(folder: Path, data: dict[str, bytes], meta: dict[str, Any], new: bool = False) -> None:
    """Write a new version of the gallery in ``folder`` (the caller holds the writer lock): the data files,
    then ``gallery.json`` naming them with their size and SHA-256. On failure nothing of the new version is
    left and the old gallery stands (``new``: there was none); FacecliError says why in one line."""
    old = _named_files(folder)
    version = f"{time.time_ns():x}{os.getpid():x}"
    written: list[Path] = []
    files = {}
    try:
        for key, blob in data.items():
            name = f"{key}-{version}{DATA_FILES[key]}"
            written.append(folder / name)  # before the write: a failed write removes its partial file too
            durable_write(folder / name, blob)
            files[key] = {"name": name, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
        fsync_dir(folder)
        text = json.dumps({**meta, "files": files}, indent=1, allow_nan=False)
        durable_replace(folder / META_FILE, text.encode("utf-8"))
    except (OSError, ValueError) as exc:
        for p in written:
            with contextlib.suppress(OSError):
                p.unlink()
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        outcome = "nothing was written" if new else "the gallery is unchanged"
        raise FacecliError(f"cannot write gallery {folder}: {why}; {outcome}") from None
    _remove_stale(folder, keep={f["name"] for f in files.values()} | old)


def _named_files(folder: Path) -> set[str]:
    """The data files the current gallery.json names (legacy names when it names none)."""
    try:
        meta = json.loads(read_regular(folder / META_FILE, META_CAP))
        files = meta.get("files")
        if isinstance(files, dict):
            return {str(f.get("name")) for f in files.values() if isinstance(f, dict)}
    except (OSError, ValueError, AttributeError, RecursionError, FacecliError):
        return set()
    return set(LEGACY_NAMES.values())


def _remove_stale(folder: Path, keep: set[str]) -> None:
    """Remove data files of versions older than the previous one, and temporary files left by a kill."""
    for p in folder.iterdir():
        n = p.name
        stale_data = any(n.startswith(f"{k}-") and n.endswith(ext) for k, ext in DATA_FILES.items())
        litter = n.startswith(".") and n.endswith(".tmp")
        legacy = n in LEGACY_NAMES.values()
        if (stale_data or litter or legacy) and n not in keep and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()


def read_version(folder: Path) -> tuple[dict[str, Any], dict[str, bytes | None]]:
    """The checked metadata of the gallery in ``folder`` and the raw bytes of its data files (index: None for
    flat galleries, which rebuild it). FacecliError for anything missing, corrupt or tampered with."""
    if not folder.is_dir():
        raise FacecliError(f"gallery not found: {folder} (build one with 'facecli gallery build')")
    for attempt in range(READ_ATTEMPTS):
        try:
            raw = read_regular(folder / META_FILE, META_CAP)
        except FileNotFoundError:
            raise FacecliError(f"{folder} is not a facecli gallery (no {META_FILE}; build one with "
                               "'facecli gallery build')") from None
        except OSError as exc:
            raise FacecliError(f"gallery {folder}: cannot read {META_FILE} ({exc.strerror})") from None
        try:
            meta = json.loads(raw, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            raise FacecliError(f"gallery {folder} is corrupt ({META_FILE} is not valid JSON)") from None
        check_meta(folder, meta)
        try:
            return meta, _read_files(folder, meta)
        except FileNotFoundError:
            if attempt + 1 == READ_ATTEMPTS:
                raise FacecliError(f"gallery {folder} is missing data files its {META_FILE} names") from None
            time.sleep(0.05)  # a writer replaced the version meanwhile: read the new one
    raise AssertionError("unreachable")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read_files(folder: Path, meta: dict[str, Any]) -> dict[str, bytes | None]:
    files = meta.get("files")
    wanted = ["templates"] + (["photo_vectors", "thumbnails"] if meta.get("photo") is not None else [])
    if meta.get("index") == "hnsw" and files is not None:
        # an older gallery's index has no checksum: a FAISS file is never trusted unchecked (a header claiming
        # 2^29 entries cost gigabytes before FAISS refused it); it is rebuilt from the templates when searched
        wanted.append("index")
    out: dict[str, bytes | None] = {"index": None}
    for key in wanted:
        if files is None:  # an older gallery: no checksums
            out[key] = read_regular(folder / LEGACY_NAMES[key], _legacy_cap(meta, key))
            continue
        entry = files.get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or "/" in entry["name"]:
            raise FacecliError(f"gallery {folder} is corrupt ({META_FILE} does not name its {key} file)")
        size = entry.get("bytes")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or not isinstance(entry.get("sha256"), str):
            raise FacecliError(f"gallery {folder} is corrupt ({META_FILE} gives no size and checksum of its {key} file)")
        path = folder / entry["name"]
        blob = read_regular(path, size)
        if len(blob) != entry.get("bytes") or hashlib.sha256(blob).hexdigest() != entry.get("sha256"):
            raise FacecliError(f"gallery {folder} is corrupt ({entry['name']} does not match its checksum: "
                               "truncated or changed)")
        out[key] = blob
    return out


def read_regular(path: Path, cap: int) -> bytes:
    """The bytes of ``path``, which must be a regular file (not a link, FIFO or device: those are refused
    without waiting) of at most ``cap`` bytes, never reading more than that; FileNotFoundError when it is
    missing, FacecliError otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        why = "a symbolic link" if path.is_symlink() else (exc.strerror or str(exc))
        raise FacecliError(f"gallery {path.parent} is corrupt ({path.name}: {why})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FacecliError(f"gallery {path.parent} is corrupt ({path.name} is not a regular file)")
        if st.st_size > cap:
            raise FacecliError(f"gallery {path.parent} is corrupt ({path.name} is {st.st_size} bytes, more than its "
                               "metadata allows)")
        pieces, left = [], cap + 1
        while left > 0:
            piece = os.read(fd, min(left, 1 << 20))
            if not piece:
                break
            pieces.append(piece)
            left -= len(piece)
        data = b"".join(pieces)
        if len(data) > cap:
            raise FacecliError(f"gallery {path.parent} is corrupt ({path.name} grew past what its metadata allows)")
        return data
    finally:
        os.close(fd)


def _legacy_cap(meta: dict[str, Any], key: str) -> int:
    """The largest a data file of an older gallery can be, from the row counts its metadata gives."""
    rows, dim = len(meta["rows"]), int(meta.get("dim") or 4096)
    photos = len(meta["photo"]["rows"]) if meta.get("photo") else 0
    per = {"templates": rows * dim * 4, "index": rows * (dim * 4 + 2048), "photo_vectors": photos * 4096 * 4,
           "thumbnails": photos * 64 * 64}[key]
    return per + (1 << 20)


def load_array(folder: Path, name: str, blob: bytes, shape: tuple[int | None, ...], dtype: str) -> np.ndarray:
    """An array from .npy bytes whose header must give ``shape`` (None: any size there) and a numeric
    ``dtype`` kind, checked before the data is read."""
    buf = io.BytesIO(blob)
    try:
        version = np.lib.format.read_magic(buf)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        got_shape, _, got_dtype = read_header(buf)
    except (ValueError, OSError, SyntaxError):
        raise FacecliError(f"gallery {folder} is corrupt ({name} is not a NumPy array)") from None
    if len(got_shape) != len(shape) or any(w is not None and g != w for g, w in zip(got_shape, shape, strict=True)):
        raise FacecliError(f"gallery {folder} is corrupt ({name} holds {got_shape}, the metadata says {shape})")
    if got_dtype.kind != np.dtype(dtype).kind or got_dtype.hasobject:
        raise FacecliError(f"gallery {folder} is corrupt ({name} holds {got_dtype} values)")
    buf.seek(0)
    try:
        return np.load(buf, allow_pickle=False).astype(dtype)
    except (ValueError, OSError):
        raise FacecliError(f"gallery {folder} is corrupt ({name} is truncated)") from None


# ------------------------------------------------------------------ metadata checks


def check_meta(folder: Path, meta: Any) -> None:
    """FacecliError naming the first field of ``gallery.json`` that has the wrong type or an impossible value."""
    if not isinstance(meta, dict) or meta.get("format") != GALLERY_FORMAT:
        raise FacecliError(f"{folder} is not a facecli gallery ({META_FILE} has no format {GALLERY_FORMAT})")

    def bad(field: str, what: str) -> FacecliError:
        return FacecliError(f"gallery {folder} is corrupt ({META_FILE}: {field} {what})")

    rows = meta.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, str) for r in rows):
        raise bad("rows", "must be a list of identity names")
    t = meta.get("threshold")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or not -1.000001 <= t <= 1.000001:
        raise bad("threshold", f"must be a finite number in [-1, 1], not {t!r}")
    counts = meta.get("image_counts", {})
    if not isinstance(counts, dict) or not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                                               for k, v in counts.items()):
        raise bad("image_counts", "must map identity names to whole numbers")
    model = meta.get("model", {})
    if not isinstance(model, dict) or not all(isinstance(model.get(k), str | type(None)) for k in ("path", "sha256")):
        raise bad("model", "must be a record with a path and a sha256")
    dim = meta.get("dim")
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 65536):
        raise bad("dim", f"must be a whole number in [1, 65536], not {dim!r}")
    for key in ("per_image",):
        if not isinstance(meta.get(key, False), bool):
            raise bad(key, "must be true or false")
    if not isinstance(meta.get("threshold_source", ""), str | type(None)):
        raise bad("threshold_source", "must be text")
    if not isinstance(meta.get("threshold_calibrated", False), bool | type(None)):
        raise bad("threshold_calibrated", "must be true or false")
    if meta.get("index") not in (None, "hnsw", "flat_inner_product"):
        raise bad("index", "must be hnsw or flat_inner_product")
    scale = meta.get("score_scale")
    if scale is not None:
        from facecli.card import ScoreScale

        try:
            ScoreScale.from_dict(scale)
        except (ValueError, KeyError, TypeError):
            raise bad("score_scale", "is not a valid score scale") from None
    photo = meta.get("photo")
    if photo is not None and (not isinstance(photo, dict) or not isinstance(photo.get("rows"), list)
                              or not all(isinstance(r, str) for r in photo["rows"])
                              or not isinstance(photo.get("model"), dict)):
        raise bad("photo", "must be a record with rows (identity names) and a model")
    files = meta.get("files")
    if files is not None and not isinstance(files, dict):
        raise bad("files", "must be a record of data files")
