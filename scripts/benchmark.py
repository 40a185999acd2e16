"""Speed and memory of the whole ``facecli classify`` and ``facecli match`` commands.

Each command runs as its own process on 250x250 JPEGs (decode, preprocessing, inference and CSV writing
included, and Python start-up and model loading too); the script prints images/s and the peak resident
memory of that process. Images are generated unless ``--data`` points at a FACECOM folder, in which case
the 250x250 Task_A photos are used for classify and Task_B identity folders for match. ``match`` is timed on
two kinds of probe, which take different paths: same-photo probes (degraded copies of gallery photos: photo
evidence can decide them) and cross-photo probes (degraded copies of a person's *other* photos, whose own photo
is not in the gallery: photo evidence runs but never decides).

    python scripts/benchmark.py                      # generated images, default models
    python scripts/benchmark.py --data ../shared/data/FACECOM --images 1500
    python scripts/benchmark.py --gender-model other.onnx --identity-model other_embedder.onnx
    python scripts/benchmark.py --data ../shared/data/FACECOM --detect both   # with and without detection
    python scripts/benchmark.py --huge     # peak memory of classify on normal photos mixed with huge JPEGs
    python scripts/benchmark.py --data ../shared/data/FACECOM --engines   # local vs --engine ray, side by side
    git worktree add /tmp/old <commit> && python scripts/benchmark.py --data ../shared/data/FACECOM --baseline /tmp/old
                                           # side by side with an older checkout, runs interleaved

Generated images hold no face, so with detection they take the detector's slowest path (a padded
second search and the fallback check); real photos (``--data``) give the figures to quote.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

KINDS = ("blurred", "foggy", "lowlight", "noisy", "rainy", "resized", "sunny")


def synthetic_photo(rng: np.random.Generator, size: int = 250) -> np.ndarray:
    """A textured 250x250 image whose JPEG is about as large as a real face photo's."""
    small = rng.integers(0, 255, (size // 10, size // 10, 3), dtype=np.uint8)
    img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(np.int16) + rng.integers(-12, 12, img.shape), 0, 255).astype(np.uint8)


def make_classify_folder(root: Path, n: int, data: Path | None, rng, cycle: bool = False) -> int:
    root.mkdir(parents=True)
    if data is not None:
        files = sorted(p for p in (data / "Task_A" / "train").rglob("*.jpg") if "frontal" not in p.name)
        total = n if cycle else min(n, len(files))
        for i in range(total):  # cycle: hard links of them again past the end
            f = files[i % len(files)]
            if i < len(files):
                shutil.copy(f, root / f.name)
            else:
                os.link(root / f.name, root / f"{i:06d}_{f.name}")
        return total
    for i in range(n):
        cv2.imwrite(str(root / f"img_{i:05d}.jpg"), synthetic_photo(rng), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return n


def make_identity_folder(root: Path, n_probes: int, data: Path | None, rng) -> int:
    """Identity layout with n_probes distorted images (7 per clean photo)."""
    n_ids = max(1, n_probes // len(KINDS))
    if data is not None:
        src = sorted(p for p in (data / "Task_B" / "train").iterdir() if p.is_dir())[:n_ids]
        for d in src:
            shutil.copytree(d, root / d.name)
        return sum(1 for _ in root.rglob("distortion/*.jpg"))
    for i in range(n_ids):
        img = synthetic_photo(rng)
        d = root / f"id_{i:05d}"
        (d / "distortion").mkdir(parents=True)
        cv2.imwrite(str(d / f"id_{i:05d}_0001.jpg"), img)
        for k in KINDS:
            noisy = np.clip(img.astype(np.int16) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(d / "distortion" / f"id_{i:05d}_0001_{k}.jpg"), noisy)
    return n_ids * len(KINDS)


def make_cross_photo_folders(gallery: Path, probes: Path, n_probes: int, data: Path | None, rng) -> int:
    """Cross-photo probes: for identities with two or more clean photos, clean[0::2] go into ``gallery`` (an
    identity layout) and the degraded copies of clean[1::2] into ``probes`` (a plain folder), so no probe's own
    photo is in the gallery (photo evidence runs for them but can never decide). Generated data: one photo of
    each identity in the gallery and a perturbed second photo's copies as probes."""
    n = 0
    if data is not None:
        for d in sorted(p for p in (data / "Task_B" / "train").iterdir() if p.is_dir()):
            clean = sorted(d.glob("*.jpg"))
            if len(clean) < 2:
                continue
            (gallery / d.name).mkdir(parents=True)
            for c in clean[0::2]:
                shutil.copy(c, gallery / d.name / c.name)
            for c in clean[1::2]:
                for k in KINDS:
                    src = d / "distortion" / f"{c.stem}_{k}.jpg"
                    if src.is_file() and n < n_probes:
                        probes.mkdir(parents=True, exist_ok=True)
                        shutil.copy(src, probes / f"{d.name}__{src.name}")
                        n += 1
            if n >= n_probes:
                break
        return n
    make_identity_folder(gallery, n_probes, None, rng)
    for dist in gallery.glob("*/distortion"):
        probes.mkdir(parents=True, exist_ok=True)
        for f in dist.glob("*.jpg"):
            img = cv2.imread(str(f))
            cv2.imwrite(str(probes / f.name), cv2.flip(img, 1))  # another "photo": not a copy of the gallery's
            n += 1
        shutil.rmtree(dist)
    return n


def make_huge_folder(root: Path, n: int, rng) -> list[str]:
    """``n`` generated 250x250 photos plus two huge JPEGs (20000x20000 and 32000x32000, greyscale so that
    making them here stays cheap; facecli decodes them as colour)."""
    make_classify_folder(root, n, None, rng)
    sizes = []
    for side in (20000, 32000):
        img = np.zeros((side, side), np.uint8)
        img[:, : side // 2] = 200
        cv2.imwrite(str(root / f"huge_{side}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 30])
        del img
        sizes.append(f"{side}x{side} ({(root / f'huge_{side}.jpg').stat().st_size / 2**20:.0f} MB)")
    return sizes


def timed(cmd: list[str], repeat: int = 1, env: dict | None = None) -> tuple[float, float]:
    """Run ``cmd`` ``repeat`` times; return the median wall seconds and the largest peak RSS in MiB."""
    runs = [_timed_once(cmd, env) for _ in range(repeat)]
    return float(np.median([w for w, _ in runs])), max(r for _, r in runs)


def _timed_once(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    if "build" in cmd and "--gallery" in cmd:  # a fresh gallery each time (building over one is refused)
        shutil.rmtree(cmd[cmd.index("--gallery") + 1], ignore_errors=True)
    t = time.perf_counter()
    # run outside any checkout: `python -m` puts the working folder first on sys.path, so a command started in
    # this repository would import this checkout's facecli even for --baseline (whose PYTHONPATH comes after it)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024


def gallery_scale(n: int, dim: int = 512, queries: int = 1000) -> None:
    """Build, save, load and search a gallery of ``n`` random identities; print times and recall@1."""
    import resource

    from facecli.gallery import APPROX_ABOVE, Gallery

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    names = [f"id_{i:07d}" for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        g = Gallery.create(names, vecs, {k: 1 for k in names}, {"sha256": "bench"}, 0.5)
        g.index()
        build = time.perf_counter() - t
        t = time.perf_counter()
        g.save(Path(tmp) / "g")
        save = time.perf_counter() - t
        t = time.perf_counter()
        g = Gallery.load(Path(tmp) / "g")
        load = time.perf_counter() - t
        pick = rng.choice(n, queries, replace=False)
        q = vecs[pick] + 0.3 * rng.standard_normal((queries, dim)).astype(np.float32)  # a 'distorted' copy
        t = time.perf_counter()
        top, _ = g.search(q, k=5)
        search = time.perf_counter() - t
    hit = np.mean([top[i][0] == names[j] for i, j in enumerate(pick)])
    kind = "HNSW (approximate)" if n > APPROX_ABOVE else "flat (exact)"
    print(f"# gallery of {n} identities x {dim}-d, {kind} index")
    print(f"build {build:.1f}s  save {save:.1f}s  load {load:.1f}s  search {queries / search:.0f} queries/s  "
          f"recall@1 {hit:.4f}  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000, help="images per command (default 2000)")
    ap.add_argument("--data", type=Path, help="FACECOM folder with Task_A/ and Task_B/ (default: generated)")
    ap.add_argument("--gender-model", type=Path, help="ONNX gender model (default: the shipped one)")
    ap.add_argument("--identity-model", type=Path, help="ONNX embedder (default: the shipped one)")
    ap.add_argument("--detect", choices=["auto", "none", "both"],
                    help="override the models' detection setting; 'both' times every command with none and auto")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per command; the median time is reported (default 3: shared machines are noisy)")
    ap.add_argument("--huge", action="store_true",
                    help="instead: peak memory of classify on --images generated photos plus two huge JPEGs")
    ap.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                    help="also time an older facecli checkout (run as PYTHONPATH=CHECKOUT python -m facecli), "
                         "interleaved with this one, and print both with their ratio")
    ap.add_argument("--engines", action="store_true",
                    help="instead: classify and plain-layout match on the local engine and on --engine ray (a "
                         "local Ray instance started by the command, its start-up included), interleaved")
    ap.add_argument("--gallery-scale", type=int, metavar="N",
                    help="instead: time a gallery of N random identities (index build, save, load, search)")
    args = ap.parse_args()
    for name in ("gender_model", "identity_model", "baseline"):  # commands run in another folder
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    if args.gallery_scale:
        gallery_scale(args.gallery_scale)
        return
    if args.engines:
        engine_speed(args)
    elif args.huge:
        huge_memory(args)
    else:
        command_speed(args)


FACECLI = [sys.executable, "-m", "facecli"]


def huge_memory(args) -> None:
    """Peak memory of classify on generated photos plus two huge JPEGs, without and with detection."""
    facecli = FACECLI
    with tempfile.TemporaryDirectory() as tmp:
        n = min(args.images, 500)
        # made in a separate process: a child inherits its parent's peak RSS, which would hide the figure
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(1) as pool:
            sizes = pool.apply(make_huge_folder, (Path(tmp) / "mixed", n, np.random.default_rng(0)))
        base = [*facecli, "classify", str(Path(tmp) / "mixed"), "--out", str(Path(tmp) / "r.csv")]
        wall_n, rss_n = timed([*base, "--detect", "none"], args.repeat)
        wall_a, rss_a = timed([*base, "--detect", "auto"], args.repeat)
    print(f"# classify on {n} generated 250x250 JPEGs plus huge JPEGs {', '.join(sizes)}; "
          f"{os.cpu_count()} CPU cores, median of {args.repeat} runs")
    print(f"--detect none: {wall_n:.1f} s, peak RSS {rss_n:.0f} MiB")
    print(f"--detect auto: {wall_a:.1f} s, peak RSS {rss_a:.0f} MiB")


def engine_speed(args) -> None:
    """Whole-command throughput of the local engine and the Ray engine on this machine, side by side."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_cls = make_classify_folder(tmp / "photos", args.images, args.data, rng, cycle=True)
        n_probe = make_identity_folder(tmp / "ids", args.images, args.data, rng)
        probes = tmp / "probes"
        probes.mkdir()
        for i, f in enumerate(sorted((tmp / "ids").glob("*/distortion/*.jpg"))):
            os.link(f, probes / f"{i:06d}.jpg")
        subprocess.run([*FACECLI, "gallery", "build", str(tmp / "ids"), "--gallery", str(tmp / "g")],
                       capture_output=True, check=True)
        jobs = [("classify", n_cls, [*FACECLI, "classify", str(tmp / "photos"), "--out", str(tmp / "r{e}.csv")]),
                ("match (plain layout)", n_probe, [*FACECLI, "match", str(probes), "--gallery", str(tmp / "g"),
                                                   "--out", str(tmp / "m{e}.csv")])]
        rows = []
        for name, n, cmd in jobs:
            got: dict[str, list] = {}
            for _ in range(args.repeat):
                for engine in ("local", "ray"):
                    got.setdefault(engine, []).append(
                        timed([c.replace("{e}", engine) for c in cmd] + ["--engine", engine]))
            rows.append((name, n, {e: float(np.median([w for w, _ in r])) for e, r in got.items()},
                         {e: max(m for _, m in r) for e, r in got.items()}))
            same = (tmp / "rlocal.csv" if name == "classify" else tmp / "mlocal.csv").read_bytes() == \
                (tmp / "rray.csv" if name == "classify" else tmp / "mray.csv").read_bytes()
            rows[-1] += (same,)
    src = f"FACECOM images from {args.data}" if args.data else "generated 250x250 JPEGs"
    print(f"# local vs Ray engine: {src}; {os.cpu_count()} CPU cores, one node, whole commands (Ray start-up "
          f"included), median of {args.repeat} runs")
    print(f"{'command':<21} {'images':>7} {'local img/s':>12} {'ray img/s':>10} {'ray/local':>10} "
          f"{'driver MiB local/ray':>21} {'same output':>12}")
    for name, n, wall, rss, same in rows:
        print(f"{name:<21} {n:>7} {n / wall['local']:>12.1f} {n / wall['ray']:>10.1f} "
              f"{wall['local'] / wall['ray']:>10.2f} {rss['local']:>10.0f}/{rss['ray']:<10.0f} {str(same):>12}")


def command_speed(args) -> None:
    """Whole-command time and peak memory of classify, gallery build and match."""
    facecli = FACECLI
    rng = np.random.default_rng(0)
    modes = ["none", "auto"] if args.detect == "both" else [args.detect]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_cls = make_classify_folder(tmp / "photos", args.images, args.data, rng)
        n_probe = make_identity_folder(tmp / "ids", args.images, args.data, rng)
        gm = ["--model", str(args.gender_model)] if args.gender_model else []
        im = ["--model", str(args.identity_model)] if args.identity_model else []
        n_clean = sum(1 for p in (tmp / "ids").glob("*/*.jpg"))
        n_cross = make_cross_photo_folders(tmp / "xgal", tmp / "xprobes", args.images, args.data, rng)
        versions = {"this": None}
        if args.baseline:
            versions["baseline"] = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
        rows = []
        for mode in modes:
            extra = ["--detect", mode] if mode else []
            tag = f" ({mode})" if mode else ""
            jobs = [
                (f"classify{tag}", n_cls, [*facecli, "classify", str(tmp / "photos"), "--out", str(tmp / "r.csv"),
                                           *gm, *extra]),
                (f"gallery build{tag}", n_clean, [*facecli, "gallery", "build", str(tmp / "ids"), "--gallery",
                                                  str(tmp / "g{v}"), *im, *extra]),
                (f"match same-photo{tag}", n_probe, [*facecli, "match", str(tmp / "ids"), "--gallery",
                                                     str(tmp / "g{v}"), "--out", str(tmp / "m.csv"), *im, *extra]),
                (f"gallery build x{tag}", sum(1 for _ in (tmp / "xgal").glob("*/*.jpg")),
                 [*facecli, "gallery", "build", str(tmp / "xgal"), "--gallery", str(tmp / "x{v}"), *im, *extra]),
                (f"match cross-photo{tag}", n_cross, [*facecli, "match", str(tmp / "xprobes"), "--gallery",
                                                      str(tmp / "x{v}"), "--layout", "plain", "--out",
                                                      str(tmp / "x.csv"), *im, *extra]),
            ]
            for name, n, cmd in jobs:
                got = {}
                for _ in range(args.repeat):  # interleaved, so both versions see the same machine
                    for v, env in versions.items():
                        got.setdefault(v, []).append(timed([c.replace("{v}", v) for c in cmd], 1, env))
                rows.append((name, n, {v: (float(np.median([w for w, _ in r])), max(m for _, m in r))
                                       for v, r in got.items()}))
    src = f"FACECOM images from {args.data}" if args.data else "generated 250x250 JPEGs"
    print(f"# facecli benchmark: {src}; {os.cpu_count()} CPU cores; whole commands (start-up included), "
          f"median of {args.repeat} runs" + (f"; baseline: {args.baseline}" if args.baseline else ""))
    head = f"{'command':<24} {'images':>7} {'seconds':>8} {'images/s':>9} {'peak RSS MiB':>13}"
    print(head + (f" {'baseline img/s':>15} {'baseline MiB':>13} {'ratio':>6}" if args.baseline else ""))
    for name, n, res in rows:
        wall, rss = res["this"]
        line = f"{name:<24} {n:>7} {wall:>8.1f} {n / wall:>9.1f} {rss:>13.0f}"
        if "baseline" in res:
            bw, brss = res["baseline"]
            line += f" {n / bw:>15.1f} {brss:>13.0f} {bw / wall:>6.2f}"
        print(line)


if __name__ == "__main__":
    main()
