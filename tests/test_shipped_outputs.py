"""The shipped models give the same outputs on the same inputs, release after release.

``tests/data/shipped_rows.json`` holds the rows that ``classify_images`` and ``embed_images``
gave on a fixed set of generated images (scikit-image's astronaut, cropped, framed and
degraded, a cat and a picture without a face) when it was written. A refactoring must leave them as they
were; a change that means to alter them regenerates the file (``python tests/test_shipped_outputs.py``) and
says why in its commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "data" / "shipped_rows.json"
KINDS = ("blurred", "foggy", "lowlight", "noisy", "rainy", "resized", "sunny")


def fixed_images() -> dict[str, np.ndarray]:
    """The fixed image set, as RGB arrays: every value is computed, nothing is read from disk."""
    from skimage import data

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import distort, pattern_image

    astro = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    lfw = cv2.resize(astro[0:300, 100:400], (250, 250))
    images = {"astronaut": astro, "lfw_style": lfw, "tight": cv2.resize(astro[60:230, 160:330], (112, 112)),
              "big_canvas": cv2.copyMakeBorder(lfw, 300, 300, 400, 400, cv2.BORDER_CONSTANT, value=(90, 90, 90)),
              "cat": cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR), "pattern": pattern_image(3, 250)}
    for kind in KINDS:
        images[f"lfw_{kind}"] = distort(lfw, kind, seed=1)
    return {k: np.ascontiguousarray(v[:, :, ::-1]) for k, v in images.items()}


def compute_rows() -> dict:
    import facecli

    images = fixed_images()
    names, arrays = list(images), list(images.values())
    cls = facecli.classify_images(arrays).table
    emb = facecli.embed_images(arrays)
    rows = {
        "names": names,
        "classify": [{"image": names[int(r.path.split()[1].rstrip(">"))], "face": int(r.face), "label": r.label,
                      "p_female": None if np.isnan(r.p_female) else round(float(r.p_female), 6),
                      "face_status": r.face_status, "box": r.box, "landmarks": r.landmarks}
                     for r in cls.itertuples()],
        "embedding": [None if not ok else [round(float(v), 5) for v in vec]
                      for vec, ok in zip(emb.vectors, emb.ok, strict=True)],
        "face_status": list(emb.face_status),
    }
    return rows


@pytest.fixture(scope="module")
def now() -> dict:
    return compute_rows()


@pytest.fixture(scope="module")
def before() -> dict:
    return json.loads(GOLDEN.read_text())


def test_classify_rows_are_unchanged(now, before):
    assert [(r["image"], r["face"], r["label"], r["face_status"], r["box"]) for r in now["classify"]] == \
        [(r["image"], r["face"], r["label"], r["face_status"], r["box"]) for r in before["classify"]]
    for a, b in zip(now["classify"], before["classify"], strict=True):
        if b["p_female"] is None:
            assert a["p_female"] is None
        else:
            assert abs(a["p_female"] - b["p_female"]) < 1e-4, (a["image"], a["p_female"], b["p_female"])
        got = np.array(a["landmarks"].split(), float) if a["landmarks"] else np.zeros(0)
        want = np.array(b["landmarks"].split(), float) if b["landmarks"] else np.zeros(0)
        assert got.shape == want.shape and np.allclose(got, want, atol=0.11)


def test_embeddings_are_unchanged(now, before):
    assert now["face_status"] == before["face_status"]
    for name, a, b in zip(before["names"], now["embedding"], before["embedding"], strict=True):
        assert (a is None) == (b is None), name
        if b is not None:
            assert np.abs(np.asarray(a) - np.asarray(b)).max() < 2e-4, name


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(compute_rows(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
