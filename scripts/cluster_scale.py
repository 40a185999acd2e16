"""How ``facecli cluster`` grows with the number of faces: time and peak memory, each size in a fresh process.

Two measurements, both on real faces of an identity-layout folder (``DATA``, e.g. the held-out people of
``scripts/make_holdout.py``):

- ``--stage grouping``: the grouping stage alone (k-nearest-neighbour graph, average linkage, numbering) on N
  faces made from the folder's real embeddings: each real face is repeated with small noise (cosine about 0.997
  to its source: near-identical copies, as in a burst of frames), so that the graph is as dense as a folder of
  many photos of few people. BCubed F against the sources' people is printed too (sunny copies left out).
- ``--stage command``: the whole command (``facecli cluster`` as a subprocess: scan, decode, detect, embed in
  durable parts, group, write) on N hard links of the folder's images (identical files, so it measures cost,
  not accuracy).

Prints, per N: seconds, faces per second and peak resident memory (ru_maxrss of the child process).

    python scripts/cluster_scale.py /tmp/holdout/identity --stage grouping --sizes 10000 100000 1000000
    python scripts/cluster_scale.py /tmp/holdout/identity --stage command --sizes 10000 --out /tmp/scale
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
import numpy as np
from facecli.clustering import average_linkage
from facecli.cluster import Grouping, group
from facecli.decision import Decision
import pandas as pd
from facecli.metrics import clustering_metrics
src = np.load(sys.argv[1]); n = int(sys.argv[2]); cos = float(sys.argv[3])
who = np.load(sys.argv[4], allow_pickle=False)
rng = np.random.default_rng(0)
usable = np.flatnonzero(who[:, 1] != "sunny")
pick = usable[rng.integers(0, len(usable), n)]
x = src[pick] + 0.007 * rng.standard_normal((n, src.shape[1]), dtype=np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
table = pd.DataFrame({"path": [f"{i}.jpg" for i in range(n)], "face": np.zeros(n, int), "face_status": "detected",
                      "restored": "untouched", "box": "", "error": ""})
t = time.perf_counter()
out = group(table, x, None, Grouping(Decision(0.0, "given"), cos))
dt = time.perf_counter() - t
m = clustering_metrics(who[pick, 0], out["cluster"].tolist())
print(json.dumps({"faces": n, "seconds": dt, "clusters": int(out["cluster"].nunique()),
                  "people": m["people"], "bcubed_f": round(m["bcubed_f"], 4)}))
"""


def peak_rss_mb(usage: resource.struct_rusage) -> float:
    return usage.ru_maxrss / 1024  # Linux: kilobytes


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd`` in a fresh process: (result, wall seconds, its peak RSS in MB)."""
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: exec the command with its output in a pipe-free temp file
        with open(env["_OUT"], "wb") as fh:
            os.dup2(fh.fileno(), 1)
            os.execvpe(cmd[0], cmd, {k: v for k, v in env.items() if k != "_OUT"})
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t
    out = Path(env["_OUT"]).read_text()
    res = subprocess.CompletedProcess(cmd, os.waitstatus_to_exitcode(status), out, "")
    return res, wall, peak_rss_mb(usage)


def embeddings(data: Path, cache: Path) -> tuple[Path, Path]:
    """The folder's largest-face embeddings (every readable image) and their (identity, kind), cached as .npy."""
    import numpy as np

    import facecli

    who = cache.with_name("source_people.npy")
    if not (cache.exists() and who.exists()):
        from facecli.cluster_eval import labelled_inputs

        paths, _, identities, kinds = labelled_inputs(data)
        emb = facecli.embed_images([Path(p) for p in paths])
        np.save(cache, emb.vectors[emb.ok].astype(np.float32))
        np.save(who, np.array([[i, k] for i, k in zip(identities, kinds, strict=True)])[emb.ok])
    return cache, who


def grouping(data: Path, sizes: list[int], work: Path) -> list[dict]:
    import facecli
    from facecli.cluster import CLUSTER_FMR

    card = facecli.load_model(None, "identity").card
    score = card.false_match.score_at(CLUSTER_FMR)
    cos = card.score_scale.cosine(score)
    src, who = embeddings(data, work / "source_embeddings.npy")
    rows = []
    for n in sizes:
        env = {**os.environ, "_OUT": str(work / f"g{n}.json")}
        res, wall, rss = run_child([sys.executable, "-c", CHILD, str(src), str(n), str(cos), str(who)], env)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append({"stage": "grouping", **r, "wall_s": round(wall, 1), "peak_rss_mb": round(rss),
                     "faces_per_s": round(n / r["seconds"])})
        print(rows[-1], flush=True)
    return rows


def command(data: Path, sizes: list[int], work: Path) -> list[dict]:
    from facecli.cluster_eval import labelled_inputs

    paths, *_ = labelled_inputs(data)
    rows = []
    for n in sizes:
        folder = work / f"links{n}"
        folder.mkdir(exist_ok=True)
        for i in range(n):
            dst = folder / f"{i // 1000:04d}" / f"{i:07d}.jpg"
            if not dst.exists():
                dst.parent.mkdir(exist_ok=True)
                os.link(paths[i % len(paths)], dst)
        out = work / f"c{n}.csv"
        out.unlink(missing_ok=True)
        env = {**os.environ, "_OUT": str(work / f"c{n}.log")}
        res, wall, rss = run_child(["facecli", "cluster", str(folder), "--out", str(out)], env)
        rows.append({"stage": "command", "faces": n, "exit": res.returncode, "wall_s": round(wall, 1),
                     "images_per_s": round(n / wall, 1), "peak_rss_mb": round(rss)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="identity-layout folder of real faces")
    ap.add_argument("--stage", choices=["grouping", "command"], default="grouping")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    args = ap.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="facecli-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores; work folder {work}")
    (grouping if args.stage == "grouping" else command)(args.data, args.sizes, work)


if __name__ == "__main__":
    main()
