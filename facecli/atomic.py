"""Atomic file writes: write to a temporary file in the same folder, then rename over the target.

An interrupted run (Ctrl-C, kill) therefore leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    On any exception the temporary file is removed and ``target`` is left untouched.
    A write that fails (disk full, read-only folder, file-size limit, no permission) raises one-line
    FacecliError naming ``target``; ``target`` is left untouched and no temporary file remains.
    """
    target = Path(target)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        yield tmp
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise _write_error(target, exc) from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def _write_error(target: Path, exc: OSError):
    from facecli.errors import FacecliError

    return FacecliError(f"cannot write {target}: {exc.strerror or exc}; it is unchanged")


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, strict JSON to ``target`` atomically: NaN and infinities become null."""
    text = json.dumps(strict_json(obj), indent=2, sort_keys=False, allow_nan=False, default=_json_default)
    write_text(target, text + "\n")


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf; NumPy's too) replaced by None, recursively."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def write_with(target: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and atomically move the result onto ``target``.

    Use for libraries that write files themselves (pandas, matplotlib, faiss, safetensors).
    """
    with atomic_path(target) as tmp:
        writer(tmp)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def check_output_file(out: str | os.PathLike[str], option: str = "--out",
                      inputs: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Refuse, before any work starts, an output that cannot or must not be written: an existing folder, a
    parent that is a file, an image file name (it would replace a photo with text), one of ``inputs``, or a
    folder where no file can be created (read-only, no permission)."""
    from facecli.errors import FacecliError
    from facecli.scan import is_image

    out = Path(out)
    if out.is_dir():
        raise FacecliError(f"{option} {out} is a folder; give a file name (e.g. {out / 'results.csv'})")
    if out.parent.exists() and not out.parent.is_dir():
        raise FacecliError(f"{option} {out}: {out.parent} is not a folder")
    if is_image(out):
        raise FacecliError(f"{option} {out} is an image file name; results are written as a table "
                           f"(e.g. {out.with_suffix('.csv').name})")
    for given in inputs:
        with contextlib.suppress(OSError):
            if out.exists() and os.path.samefile(out, given):
                raise FacecliError(f"{option} {out} is one of the inputs; write the results elsewhere")
    check_writable(out.parent, f"{option} {out}")


def check_writable(folder: Path, what: str) -> None:
    """FacecliError when no file can be created in ``folder`` (or, when it does not exist yet, in the nearest
    folder above it that does)."""
    from facecli.errors import FacecliError

    at = folder
    while not at.exists() and at != at.parent:
        at = at.parent
    try:
        with tempfile.TemporaryFile(dir=at):
            pass
    except OSError as exc:
        raise FacecliError(f"{what}: cannot write in {at} ({exc.strerror or exc})") from None
