"""Kill a real streamed classify midway, resume it, and measure peak memory against the number of files.

    python scripts/resume_trial.py FOLDER_OF_PHOTOS [--files 20000] [--work /tmp/resume_trial]

FOLDER_OF_PHOTOS: any photos (a few are enough: they are hard-linked over and over). The script
1. runs ``facecli classify`` over ``--files`` links uninterrupted (the reference output) and prints its
   wall time, images/s and peak RSS;
2. runs it again, SIGKILLs it once about half of the parts are on disk, then runs it with ``--resume`` and
   compares the final output with the reference, byte for byte, and prints how many inputs the resumed
   run skipped;
3. runs it over a tenth as many files and prints both peak RSS figures and their ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, file=sys.stderr)
sys.exit(r.returncode)
"""


def links(src: Path, dst: Path, n: int) -> Path:
    photos = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:50]
    if not photos:
        sys.exit(f"no photos under {src}")
    if dst.exists():
        shutil.rmtree(dst)
    for i in range(n):
        sub = dst / f"{i // 1000:03d}"  # 1,000 files a folder
        sub.mkdir(parents=True, exist_ok=True)
        os.link(photos[i % len(photos)], sub / f"{i:06d}{photos[i % len(photos)].suffix}")
    return dst


def classify(folder: Path, out: Path, *extra: str) -> tuple[int, float, int, str]:
    """(exit status, seconds, peak RSS MiB of the facecli process, stderr)."""
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", CHILD, sys.executable, "-m", "facecli", "classify", str(folder),
                        "--out", str(out), *extra], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    return r.returncode, time.monotonic() - t0, int(lines[-1]), r.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/resume_trial"))
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    big = links(a.photos, a.work / "big", a.files)
    small = links(a.photos, a.work / "small", a.files // 10)

    whole = a.work / "whole.csv"
    rc, secs, rss_big, _ = classify(big, whole)
    assert rc == 0
    print(f"uninterrupted: {a.files} files in {secs:.1f} s ({a.files / secs:.0f} images/s), peak RSS {rss_big} MiB")

    out = a.work / "killed.csv"
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    out.unlink(missing_ok=True)
    p = subprocess.Popen([sys.executable, "-m", "facecli", "classify", str(big), "--out", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    half = a.files // 512 // 2
    while p.poll() is None and len(list(partial.glob("part-*.json"))) < half:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    parts = len(list(partial.glob("part-*.json")))
    print(f"killed with SIGKILL after {parts} parts ({parts * 512} files) were on disk; {out.name} exists: "
          f"{out.exists()}")
    rc, secs, _, err = classify(big, out, "--resume")
    assert rc == 0, err
    skipped = [ln for ln in err.splitlines() if "skipped" in ln]
    print(f"resumed in {secs:.1f} s: {skipped[0].strip() if skipped else 'no skipped row'}")
    same = out.read_bytes() == whole.read_bytes()
    n_rows = out.read_bytes().count(b"\n") - 1
    print(f"resumed output identical to the uninterrupted one: {same}; rows {n_rows} for {a.files} files")

    rc, secs, rss_small, _ = classify(small, a.work / "small.csv")
    assert rc == 0
    print(f"peak RSS: {a.files // 10} files {rss_small} MiB, {a.files} files {rss_big} MiB "
          f"(ratio {rss_big / rss_small:.3f})")
    print(f"this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")


if __name__ == "__main__":
    main()
