"""A hostile round over ``facecli cluster`` (and the batch layer under it), on real photos; prints counts.

- random kills: ``cluster`` killed with SIGKILL at a random moment (parts, the join), then ``--resume``d
  (or, when no partial run existed yet, run again); the output must be byte for byte the uninterrupted one;
- Ctrl-C (SIGINT): exit 130, a line naming ``--resume``, and the resumed output identical;
- two runs on one ``--out`` at once: one writes, the other says another run is writing;
- a full disk (RLIMIT_FSIZE) during the parts: one ``error:`` line, and a resume after it identical;
- odd names (CR, LF, a leading =, <script>, not UTF-8): every file one row, the report escapes them;
- a changed input under a finished part: the resume is refused.

    python scripts/hostile_trial.py ../shared/data/FACECOM/Task_B/train --images 300 --kills 10
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = [sys.executable, "-c", "from facecli.cli import main; main()"]


def facecli(args: list[str], fsize: int | None = None, **kw) -> subprocess.CompletedProcess:
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([*RUN, *args], capture_output=True, text=True, preexec_fn=limit, **kw)


def sample(data: Path, n: int, into: Path, seed: int = 0) -> Path:
    files = sorted(p for p in data.rglob("*.jpg"))
    random.Random(seed).shuffle(files)
    into.mkdir(parents=True)
    for i, f in enumerate(files[:n]):
        os.link(f, into / f"{i:05d}_{f.name}")
    return into


def kills(src: Path, work: Path, n: int, whole: bytes, args: list[str]) -> dict[str, int]:
    counts = {"trials": 0, "identical": 0, "killed before any part (rerun)": 0, "different": 0}
    for t in range(n):
        out = work / f"k{t}.csv"
        p = subprocess.Popen([*RUN, "cluster", str(src), "--out", str(out), *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(random.Random(t).uniform(2.0, 14.0))
        p.send_signal(signal.SIGKILL)
        p.wait()
        counts["trials"] += 1
        if out.exists():  # finished before the kill: nothing to resume
            counts["identical"] += out.read_bytes() == whole
            continue
        partial = out.with_name(out.name + ".partial")
        r = facecli(["cluster", str(src), "--out", str(out), *args, *(["--resume"] if (partial / "run.json").exists()
                                                                      else [])])
        if r.returncode != 0 and "nothing to resume" in r.stderr:
            counts["killed before any part (rerun)"] += 1
            r = facecli(["cluster", str(src), "--out", str(out), *args])
        same = r.returncode == 0 and out.read_bytes() == whole
        counts["identical" if same else "different"] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="a folder of photos (searched recursively for .jpg)")
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--kills", type=int, default=10)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facecli-hostile-"))
    src = sample(a.data, a.images, work / "in")
    args = ["--part-size", "32"]
    whole_out = work / "whole.csv"
    r = facecli(["cluster", str(src), "--out", str(whole_out), *args])
    assert r.returncode == 0, r.stderr
    whole = whole_out.read_bytes()
    print("random SIGKILLs:", kills(src, work, a.kills, whole, args), flush=True)

    out = work / "int.csv"
    p = subprocess.Popen([*RUN, "cluster", str(src), "--out", str(out), *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    partial = out.with_name(out.name + ".partial")
    while len(list(partial.glob("part-*.json"))) < 2 and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate()
    r = facecli(["cluster", str(src), "--out", str(out), *args, "--resume"])
    print("Ctrl-C:", {"exit": p.returncode, "names --resume": "--resume" in err.strip().splitlines()[-1],
                      "resumed identical": r.returncode == 0 and out.read_bytes() == whole}, flush=True)

    out = work / "two.csv"
    p1 = subprocess.Popen([*RUN, "cluster", str(src), "--out", str(out), *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    r2 = facecli(["cluster", str(src), "--out", str(out), *args])
    p1.communicate()
    print("two runs on one --out:", {"first exit": p1.returncode, "second exit": r2.returncode,
                                     "second says another run": "another facecli run" in r2.stderr,
                                     "output identical": out.read_bytes() == whole}, flush=True)

    out = work / "full.csv"
    r = facecli(["cluster", str(src), "--out", str(out), *args], fsize=200_000)
    last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    r2 = facecli(["cluster", str(src), "--out", str(out), *args, "--resume"])
    print("full disk:", {"exit": r.returncode, "one error line": last.startswith("error: "),
                         "resumed identical": r2.returncode == 0 and out.read_bytes() == whole}, flush=True)

    odd = work / "odd"
    odd.mkdir()
    firsts = sorted(src.iterdir())[:6]
    names = ["car\rriage.jpg", "line\nfeed.jpg", "=HYPERLINK(1).jpg", "<img src=x onerror=alert(1)>.jpg",
             os.fsdecode(b"bad\xff.jpg"), "plain.jpg"]
    for f, name in zip(firsts, names, strict=True):
        os.link(f, odd / name)
    r = facecli(["cluster", str(odd), "--out", str(work / "odd.csv"), "--report", str(work / "odd_report")])
    import facecli as fc

    rows = fc.read_results(work / "odd.csv")
    page = (work / "odd_report" / "index.html").read_text()
    print("odd names:", {"exit": r.returncode, "rows": len(rows), "files": len(names),
                         "markup escaped": "<img src=x onerror" not in page}, flush=True)

    out = work / "chg.csv"
    p = subprocess.Popen([*RUN, "cluster", str(src), "--out", str(out), *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    partial = out.with_name(out.name + ".partial")
    while len(list(partial.glob("part-*.json"))) < 2 and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    victim = sorted(src.iterdir())[0]
    data = victim.read_bytes()
    victim.unlink()
    victim.write_bytes(data[:-1] + b"\0")  # one byte changed, a new file under the same name
    r = facecli(["cluster", str(src), "--out", str(out), *args, "--resume"])
    print("changed input:", {"exit": r.returncode, "refused": "inputs changed" in r.stderr}, flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
