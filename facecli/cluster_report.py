"""The page people look at after ``facecli cluster --report DIR``: one row of face thumbnails per cluster.

``DIR/index.html`` is one self-contained file (thumbnails inlined as JPEG data URIs, styles inline, no
script, nothing fetched), opened in a browser straight from disk. Clusters come largest first with their
number, name and size; a cluster shows at most :data:`FACES_PER_CLUSTER` faces (the ones most tied to it
first, washed-out copies joined by photo evidence after every face, framed in orange) and the page at most
:data:`MAX_CLUSTERS` clusters, so that it stays small for a folder of a million
photos; singletons follow in one row.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from facecli.atomic import write_text
from facecli.inputs import locate

THUMB = 80  # thumbnail side in pixels
FACES_PER_CLUSTER = 24
MAX_CLUSTERS = 300
MAX_SINGLETONS = 120
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
h1{font-size:1.3em}.c{margin:0 0 1.2em}.c h2{font-size:1em;margin:.2em 0}.c h2 span{color:#666;font-weight:normal}
.row{display:flex;flex-wrap:wrap;gap:4px}.row figure{margin:0;width:80px}
.row img{width:80px;height:80px;object-fit:cover;border-radius:4px;display:block;background:#ddd}
.row figcaption{font-size:9px;color:#555;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.photo img{outline:2px solid #e8a200}"""


def face_thumbnail(path: Path, box: str) -> str:
    """A face's thumbnail as a JPEG data URI (the box with a margin, or the whole image); "" when unreadable."""
    from facecli.decode import DecodeError, read_image

    try:
        img = read_image(path)
    except (DecodeError, OSError):
        return ""
    if box:
        x, y, w, h = (int(float(v)) for v in box.split())
        m = int(0.25 * max(w, h))
        img = img[max(0, y - m):y + h + m, max(0, x - m):x + w + m] if w > 0 and h > 0 else img
    if img.size == 0:
        return ""
    side = max(img.shape[:2])
    pad = np.full((side, side, 3), 221, np.uint8)
    oy, ox = (side - img.shape[0]) // 2, (side - img.shape[1]) // 2
    pad[oy:oy + img.shape[0], ox:ox + img.shape[1]] = img
    ok, buf = cv2.imencode(".jpg", cv2.resize(pad, (THUMB, THUMB), interpolation=cv2.INTER_AREA),
                           [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def _figure(row: pd.Series, sources: Sequence[str]) -> str:
    path = locate(str(row["path"]), sources)
    uri = face_thumbnail(path, str(row["box"] or "")) if path is not None else ""
    label = html.escape(str(row["path"]))
    cls = ' class="photo"' if row["evidence"] == "photo" else ""
    tip = f"{label} (face {row['face']}, {row['evidence'] or 'alone'})"
    return f'<figure{cls} title="{tip}"><img alt="{label}" src="{uri}"><figcaption>{label}</figcaption></figure>'


def write_report(table: pd.DataFrame, folder: str | os.PathLike, sources: Sequence[str]) -> Path:
    """Write ``folder/index.html`` for a cluster table; returns its path."""
    t = table[table["cluster"].notna()].copy()
    # faces first (most tied to their cluster first), then washed-out copies joined by photo evidence
    t["_conf"] = pd.to_numeric(t["confidence"], errors="coerce").fillna(-1.0) - 2.0 * (t["evidence"] == "photo")
    groups = t[t["cluster_size"] > 1]
    alone = t[t["cluster_size"] == 1]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>facecli clusters</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>{groups['cluster'].nunique()} clusters of two or more faces, {len(alone)} singletons "
             f"({len(table)} rows)</h1>"]
    for n, (c, members) in enumerate(groups.groupby("cluster", sort=True)):
        if n >= MAX_CLUSTERS:
            parts.append(f"<p>{groups['cluster'].nunique() - MAX_CLUSTERS} more clusters are in the results file.</p>")
            break
        show = members.sort_values("_conf", ascending=False, kind="stable").head(FACES_PER_CLUSTER)
        name = html.escape(str(members["name"].iat[0]))
        parts.append(f'<section class="c" id="cluster-{int(c)}"><h2>{int(c)}. {name} <span>{len(members)} faces'
                     f'</span></h2><div class="row">{"".join(_figure(r, sources) for _, r in show.iterrows())}'
                     "</div></section>")
    if len(alone):
        parts.append(f'<section class="c" id="singletons"><h2>singletons <span>{len(alone)} faces that joined no one'
                     f'</span></h2><div class="row">'
                     f'{"".join(_figure(r, sources) for _, r in alone.head(MAX_SINGLETONS).iterrows())}</div></section>')
    parts.append("</body></html>\n")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "index.html"
    write_text(page, "".join(parts))
    return page
