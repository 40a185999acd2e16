"""``facecli cluster --link-to DIR``: a folder per cluster of symbolic links to its photos, to look through or
copy with any file manager.

``DIR/0001_person_0001/`` holds a link to every photo with a face in cluster 1 (the largest), named as the file
is (``-2``, ``-3`` before the extension when two files share a name); a cluster named from a gallery carries
that name (``0003_Ada_Lovelace``); faces that joined no one are linked in ``DIR/singletons/``. A photo with faces
in two clusters is linked in both. Links point at absolute paths, so the folder stays valid wherever it is
opened from, as long as the photos stay where they are.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from facecli.errors import FacecliError
from facecli.inputs import locate

SINGLETONS = "singletons"


def check_link_folder(folder: str | os.PathLike[str]) -> Path:
    """``folder`` when it can become the link folder: it must not exist yet (nothing is overwritten) and its
    parent must be a writable folder; FacecliError (one line) otherwise."""
    p = Path(folder)
    if p.exists() or p.is_symlink():
        raise FacecliError(f"--link-to {p} already exists: remove it or name a new folder")
    parent = p.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise FacecliError(f"--link-to {p}: {parent} is not a writable folder")
    return p


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name, flags=re.UNICODE).strip("._") or "cluster"


def write_links(table: pd.DataFrame, folder: str | os.PathLike[str], sources: Sequence[str]) -> tuple[Path, int, int]:
    """Write the link folder for a cluster table (:mod:`facecli.cluster` rows) whose paths name files of
    ``sources``; returns (folder, links written, rows whose file was not found). Built in a temporary folder
    beside ``folder`` and renamed into place in one step: an interrupted run leaves no half-made folder."""
    target = check_link_folder(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.resolve().parent))
    links = missing = 0
    try:
        rows = table[table["cluster"].notna()]
        for (number, size, name), members in rows.groupby(["cluster", "cluster_size", "name"], sort=True):
            sub = tmp / (SINGLETONS if int(size) == 1 else f"{int(number):04d}_{_safe(str(name))}")
            sub.mkdir(exist_ok=True)
            for path in dict.fromkeys(members["path"].astype(str)):  # an image once, whatever its face count
                src = locate(path, sources)
                if src is None:
                    missing += 1
                    continue
                link = sub / src.name
                k = 2
                while link.is_symlink() or link.exists():
                    link = sub / f"{src.stem}-{k}{src.suffix}"
                    k += 1
                os.symlink(src.resolve(), link)
                links += 1
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target, links, missing
