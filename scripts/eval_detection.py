"""Measure face detection and landmarks on FACECOM-style data: per distortion kind, framings, portraits.

FACECOM's distorted images are pixel-aligned copies of their clean source, so the landmarks found on the
clean photo are ground truth for its seven degraded copies. For the held-out identities (the same
identity-disjoint split as training, seed 0) this prints, per distortion kind, the share of images where
a face is detected, found by the fallback, or not found, and the landmark error against the clean photo's
landmarks: the mean distance over the five points in % of the inter-ocular distance (NME). It also
measures two framings made from the same clean photos (a tight crop around the face, and the photo small
in a 3x larger canvas), the Task A studio portraits (no ground truth: detection rate and eye distance),
and non-face images from scikit-image (which must give no face).

    python scripts/eval_detection.py ../shared/data/FACECOM
    python scripts/eval_detection.py ../shared/data/FACECOM --prior   # re-measure detect.FRAME_PRIOR

Nothing is written; figures are printed as Markdown tables.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from facecli.decode import read_image
from facecli.face.detectors import Face, detect_faces
from facecli.scan import DISTORTION_KINDS, resolve_identity_root, scan_identity_folder


def split_identities(items, fraction: float = 0.2, seed: int = 0):
    """The held-out identities of training's identity-disjoint split (same function and seed)."""
    from facecli.splits import split_by_identity

    return split_by_identity(items, fraction, seed)


def nme(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean landmark error in % of the reference inter-ocular distance."""
    iod = float(np.linalg.norm(ref[0] - ref[1]))
    return float(np.linalg.norm(pred - ref, axis=1).mean() / max(iod, 1e-6) * 100)


def tight_crop(img: np.ndarray, box: tuple[int, int, int, int], scale: float = 1.1):
    """(crop, x0, y0): the square ``scale`` x the face box around its centre, or None when it leaves the image."""
    x, y, w, h = box
    side = int(round(max(w, h) * scale))
    x0, y0 = int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2))
    if x0 < 0 or y0 < 0 or x0 + side > img.shape[1] or y0 + side > img.shape[0]:
        return None
    return img[y0 : y0 + side, x0 : x0 + side], x0, y0


def best(faces: list[Face]) -> Face | None:
    return faces[0] if faces else None


def row(name: str, n: int, det: int, fb: int, errs: list[float]) -> str:
    e = np.asarray(errs) if errs else np.asarray([np.nan])
    ok10 = float((e < 10).mean()) if errs else float("nan")
    return (f"| {name} | {n} | {det / n:.3f} | {fb / n:.3f} | {(n - det - fb) / n:.3f} | "
            f"{np.nanmedian(e):.1f} | {np.nanmean(e):.1f} | {ok10:.3f} |")


HEADER = ("| images | N | detected | fallback | not found | NME median % | NME mean % | NME < 10% |\n"
          "|---|---|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="FACECOM folder holding Task_A/ and Task_B/")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N held-out clean photos")
    ap.add_argument("--prior", action="store_true", help="print the median face box of the training-side photos")
    args = ap.parse_args()

    root = resolve_identity_root(args.data / "Task_B", "train")
    items = scan_identity_folder(root)
    tr, va = split_identities(items)

    if args.prior:
        print_prior(items, tr)
        return

    clean = [items[i] for i in va if not items[i].distortion]
    if args.limit:
        clean = clean[: args.limit]
    by_source = distorted_by_source([items[i] for i in va])

    stats: dict[str, list] = defaultdict(lambda: [0, 0, 0, []])  # n, detected, fallback, errors

    def add(key: str, face: Face | None, ref: np.ndarray | None) -> None:
        s = stats[key]
        s[0] += 1
        if face is None:
            return
        s[1 if face.status == "detected" else 2] += 1
        if ref is not None:
            s[3].append(nme(face.landmarks, ref))

    t0 = time.perf_counter()
    n_imgs = 0
    for it in clean:
        img = read_image(it.path)
        ref_face = best(detect_faces(img, pad=False, fallback=False))
        add("clean", best(detect_faces(img)), None if ref_face is None else ref_face.landmarks)
        n_imgs += 1
        if ref_face is None:  # no ground truth for this photo's copies
            continue
        ref = ref_face.landmarks
        for d in by_source[(it.identity, it.path.stem)]:
            add(d.distortion, best(detect_faces(read_image(d.path))), ref)
            n_imgs += 1
        # tight crop: a square 1.1x the box around the face centre; landmarks shift with it
        cut = tight_crop(img, ref_face.box)
        if cut is not None:
            tight, x0, y0 = cut
            add("tight crop", best(detect_faces(tight)), ref - np.float32([x0, y0]))
        hh, ww = img.shape[:2]
        # face small in a big canvas: the photo pasted at the centre of a 3x larger grey image
        big = np.full((hh * 3, ww * 3, 3), 128, np.uint8)
        big[hh : 2 * hh, ww : 2 * ww] = img
        add("small in 3x canvas", best(detect_faces(big)), ref + np.float32([ww, hh]))
        n_imgs += 2
    elapsed = time.perf_counter() - t0
    print_table(stats, clean, n_imgs, elapsed)
    print_portraits(args.data)
    print_non_faces()


def distorted_by_source(items) -> dict:
    """The distorted copies of each clean photo: (identity, source stem) -> items."""
    by_source = defaultdict(list)
    for it in items:
        if it.distortion:
            by_source[(it.identity, it.source_stem)].append(it)
    return by_source


def print_prior(items, tr) -> None:
    """The median face box of the training-side clean photos (detect.FRAME_PRIOR and BOX_FRACTION)."""
    boxes = []
    for i in tr:
        it = items[i]
        if it.distortion:
            continue
        img = read_image(it.path)
        f = best(detect_faces(img, pad=False, fallback=False))
        if f is not None:
            x, y, w, h = f.box
            s = img.shape[1]
            boxes.append([x / s, y / s, (x + w) / s, (y + h) / s])
    print("median face box (x1, y1, x2, y2) / side over", len(boxes), "training photos:",
          np.round(np.median(boxes, axis=0), 3).tolist())


def print_table(stats, clean, n_imgs: int, elapsed: float) -> None:
    """Detection rate and landmark error per kind of image."""
    n_ident = len({it.identity for it in clean})
    print(f"Held-out identities of FACECOM train (identity-disjoint split, seed 0): {n_ident} identities, "
          f"{len(clean)} clean photos. Ground truth = landmarks detected on the clean photo "
          f"({stats['clean'][1]} of {len(clean)} found without padding or fallback).\n")
    print(HEADER)
    for key in ["clean", *DISTORTION_KINDS, "tight crop", "small in 3x canvas"]:
        if key in stats:
            print(row(key, stats[key][0], stats[key][1], stats[key][2], stats[key][3]))
    allk = [stats[k] for k in DISTORTION_KINDS if k in stats]
    if allk:
        print(row("all distorted", sum(s[0] for s in allk), sum(s[1] for s in allk), sum(s[2] for s in allk),
                  sum((s[3] for s in allk), [])))
    print(f"\n{n_imgs} detections in {elapsed:.1f} s ({n_imgs / elapsed:.0f} images/s, one thread)")


def print_portraits(data: Path) -> None:
    """Studio portraits (Task A, 1024 px long side): detection rate and a sanity check of the eye distance."""
    portraits = sorted((data / "Task_A").rglob("*_frontal*.jpg"))
    if portraits:
        found, iods = 0, []
        for p in portraits:
            img = read_image(p)
            f = best(detect_faces(img))
            if f is not None:
                found += 1
                iods.append(float(np.linalg.norm(f.landmarks[0] - f.landmarks[1]) / f.box[2]))
        print(f"\nStudio portraits (Task_A *_frontal, all {len(portraits)}): face found in {found / len(portraits):.3f}; "
              f"median eye distance / box width {np.median(iods):.2f}")


def print_non_faces() -> None:
    """Faces found in scikit-image's pictures without a face (should be none), and in astronaut()."""
    from skimage import data as skdata

    non_faces = {"chelsea (cat)": skdata.chelsea(), "coffee": skdata.coffee(), "rocket": skdata.rocket(),
                 "coins": skdata.coins(), "brick": skdata.brick(), "grass": skdata.grass(), "page": skdata.page()}
    print("\nNon-face images (scikit-image), faces found:")
    for name, im in non_faces.items():
        bgr = cv2.cvtColor(im, cv2.COLOR_GRAY2BGR) if im.ndim == 2 else cv2.cvtColor(im, cv2.COLOR_RGB2BGR)
        print(f"- {name}: {[(f.status, round(f.score, 3)) for f in detect_faces(bgr)]}")
    astro = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    faces = detect_faces(astro)
    marks = np.round(faces[0].landmarks).astype(int).tolist() if faces else []
    print(f"\nastronaut(): {len(faces)} face(s); landmarks {marks}")


if __name__ == "__main__":
    main()
