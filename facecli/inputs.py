"""What a batch command runs on: one or more folders or files, or ``-`` (newline-separated paths on standard
input), streamed so that the first results come before a huge folder is fully listed; or, for the Python API,
arrays and lists held in memory. The one place a verb's ``images`` are normalised: :func:`path_sources` (can
it stream?), :func:`iter_inputs` (the inputs of path sources, lazily), :func:`in_memory` (a list to hold).

Rows name their input: with one folder, its path relative to that folder (as ``facecli classify photos/``
always did); with several sources, or files, or standard input, the path as given.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TextIO

import numpy as np

from facecli.errors import FacecliError
from facecli.scan import IMAGE_EXTENSIONS, Unlisted, iter_walk, printable, rel, scan_images

STDIN = "-"


@dataclass(frozen=True)
class Named:
    """One input and the name its rows carry."""

    item: Path | Unlisted
    name: str


def check_sources(sources: Sequence[str | os.PathLike[str]]) -> list[str | Path]:
    """The sources as given, after checking each exists (``-`` at most once); FacecliError naming the first
    that does not."""
    if not sources:
        raise FacecliError("no input given (a folder, files, or - for paths on standard input)")
    out: list[str | Path] = []
    for s in sources:
        if os.fspath(s) == STDIN:
            if STDIN in out:
                raise FacecliError("- (standard input) is given twice")
            out.append(STDIN)
            continue
        if not os.fspath(s):
            raise FacecliError("an input is an empty path (an unset shell variable?); give a folder, a file or -")
        p = Path(s)
        if not p.exists():
            raise FacecliError(f"input not found: {p}")
        out.append(p)
    return out


def iter_inputs(sources: Sequence[str | os.PathLike[str]], stdin: TextIO | None = None) -> Iterator[Named]:
    """Every input of ``sources``, in order, lazily: a folder's images (recursive, sorted per folder), a
    file as it is (whatever its extension: it was asked for), and for ``-`` each non-empty line of
    ``stdin`` (default: standard input) as a path."""
    srcs = check_sources(sources)
    single = len(srcs) == 1 and isinstance(srcs[0], Path) and srcs[0].is_dir()
    for s in srcs:
        if s == STDIN:
            for line in _stdin_lines(stdin):
                line = line.rstrip("\r\n")
                if not line:
                    continue
                p = Path(line)
                problem = _unusable(line)
                if problem:  # one such line is one error row; the run goes on
                    yield Named(Unlisted(p, problem), printable(line.replace("\0", "\\0")))
                elif p.is_dir():  # a folder on standard input is scanned like a folder argument
                    for f in iter_walk(p):
                        yield Named(f, printable((f.path if isinstance(f, Unlisted) else f).as_posix()))
                else:
                    yield Named(p, printable(line))
        elif s.is_dir():
            for f in iter_walk(s):
                path = f.path if isinstance(f, Unlisted) else f
                yield Named(f, rel(path, s) if single else printable(path.as_posix()))
        else:
            yield Named(s, printable(s.as_posix()))


def _unusable(line: str) -> str:
    """Why a line of standard input cannot name a file (a NUL in it, a name too long for the system, ...), or ""."""
    if "\0" in line:
        return "not a usable path: it holds a NUL character"
    try:
        os.stat(line)
    except FileNotFoundError:
        return ""  # the batch reports it as the missing file it is
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL):
            return ""
        return f"not a usable path: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
    return ""


def _stdin_lines(stdin: TextIO | None) -> Iterator[str]:
    """Lines of ``stdin`` (default: standard input, read as bytes and decoded as file names are, so that any
    name round-trips)."""
    if stdin is not None:
        yield from stdin
        return
    raw = getattr(sys.stdin, "buffer", None)
    if raw is None:
        yield from sys.stdin
        return
    for line in raw:
        yield os.fsdecode(line)


def in_parts(items: Iterable[Named], size: int) -> Iterator[list[Named]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    it = iter(items)
    while True:
        part = list(islice(it, size))
        if not part:
            return
        yield part


def nothing_found(sources: Sequence[str | os.PathLike[str]]) -> FacecliError:
    """The error for sources that held no image at all."""
    shown = ", ".join(str(s) for s in sources)
    return FacecliError(f"no images found in {shown} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")


def path_sources(images: object) -> list[str | os.PathLike[str]] | None:
    """``images`` as a list of path sources (folders, files, "-") that a run can stream (:func:`iter_inputs`),
    or None when they are not all paths (arrays run in memory: :func:`in_memory`)."""
    if isinstance(images, str | os.PathLike):
        return [images]
    if isinstance(images, list | tuple) and images and all(isinstance(i, str | os.PathLike) for i in images):
        return list(images)
    return None


def in_memory(images: object) -> tuple[list, Path | None]:
    """``images`` (a folder, a file, an array, or a list of them) as a list of inputs held for an in-memory run,
    and the root their paths are named relative to (a scanned folder)."""
    if isinstance(images, np.ndarray):
        return [images], None
    if isinstance(images, bytes | bytearray | memoryview):
        raise FacecliError("images must be a folder, a file, a numpy array or a list of them, not raw "
                           f"{type(images).__name__} (decode them first, e.g. with facecli.load_image on a file)")
    if isinstance(images, str | os.PathLike):
        p = Path(images)
        if p.is_dir():
            return list(scan_images(p)), p
        if not p.exists():
            raise FacecliError(f"not found: {p}")
        return [p], None
    if isinstance(images, Sequence):
        items = list(images)
        if not items:
            raise FacecliError("no images given")
        return items, None
    raise FacecliError(f"images must be a folder, a file, a numpy array or a list of them, not {type(images).__name__}")


def locate(name: str, sources: Sequence[str]) -> Path | None:
    """The file a row's ``name`` (its path column) stands for, among the run's ``sources``: the path as given,
    or inside one of the folder sources (rows of a single folder are named relative to it); None when neither
    is a file (an array, a moved file)."""
    p = Path(name)
    if p.is_file():
        return p
    for s in sources:
        if s != "-" and os.path.isdir(s) and (Path(s) / name).is_file():
            return Path(s) / name
    return None
