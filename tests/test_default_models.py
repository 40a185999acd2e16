"""The shipped default models and face detection, on generated images and scikit-image's astronaut()."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data

from facecli.face.detectors import detect_faces
from facecli.runtime import default_model_path, load_model
from tests.conftest import distort, pattern_image, write


def astronaut() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.mark.parametrize("task", ["gender", "identity"])
def test_default_models_ship_and_load(task):
    assert default_model_path(task).is_file()
    m = load_model(None, task)
    assert m.task == task and m.preprocessing.size >= 64


def test_default_gender_model_finds_the_face_and_labels_it(tmp_path, cli):
    folder = tmp_path / "p"
    write(folder / "astronaut.png", astronaut())
    write(folder / "pattern.jpg", pattern_image(3, 250))
    out = tmp_path / "r.csv"
    r = cli("classify", folder, "--out", out)  # no --model, no --detect: the shipped model aligns faces itself
    assert r.code == 0, r.err
    df = pd.read_csv(out, keep_default_na=False).set_index("path")
    assert len(df) == 2 and all(df["error"] == "")
    # an ordinary photo with the face off-centre: Eileen Collins is found and labelled female
    assert df.loc["astronaut.png", "face_status"] == "detected" and df.loc["astronaut.png", "label"] == "female"
    assert 0.5 < float(df.loc["astronaut.png", "p_female"]) <= 1
    # shapes without a face get no label at all
    assert df.loc["pattern.jpg", "face_status"] == "not_found" and df.loc["pattern.jpg", "label"] == ""


def test_default_embedder_is_robust_to_distortions():
    m = load_model(None, "identity")
    spec = m.preprocessing
    from facecli.face.preprocess import to_tensor
    from facecli.pipeline import crops_from_array

    base = cv2.resize(astronaut()[0:300, 100:400], (250, 250))
    other = cv2.resize(astronaut()[200:500, 200:500], (250, 250))
    imgs = [base, distort(base, "blurred"), distort(base, "lowlight"), other]
    x = to_tensor([crops_from_array(i, 0, spec)[0].pixels for i in imgs], spec)
    e = m.run(x)
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)
    same = e[0] @ e[1:3].T
    assert same.min() > 0.8
    assert e[0] @ e[3] < same.min()


def test_detects_the_astronaut_face_at_the_right_place():
    faces = detect_faces(astronaut())
    assert len(faces) == 1 and faces[0].status == "detected"
    x, y, w, h = faces[0].box
    cx, cy = x + w / 2, y + h / 2
    assert 190 < cx < 260 and 80 < cy < 150 and 60 < w < 140  # her face, not the flag or the helmet
    left_eye, right_eye, nose, mouth_l, mouth_r = faces[0].landmarks
    # her eyes are at about (204, 100) and (246, 103) in the 512x512 image
    assert np.linalg.norm(left_eye - (204, 100)) < 8 and np.linalg.norm(right_eye - (246, 103)) < 8
    assert left_eye[1] < nose[1] < mouth_l[1] and mouth_l[0] < nose[0] < mouth_r[0]


def test_several_faces_and_no_face(tmp_path, cli):
    folder = tmp_path / "p"
    write(folder / "two.png", np.hstack([astronaut(), astronaut()]))
    write(folder / "none.png", np.full((200, 200, 3), 120, np.uint8))
    out = tmp_path / "r.csv"
    r = cli("classify", folder, "--out", out, "--detect", "auto")
    assert r.code == 0, r.err
    df = pd.read_csv(out, keep_default_na=False)
    two = df[df["path"] == "two.png"]
    assert len(two) == 2 and set(two["face_status"]) == {"detected"}
    xs = sorted(int(b.split()[0]) for b in two["box"])
    assert xs[0] < 512 <= xs[1]  # one face in each half
    none = df[df["path"] == "none.png"]
    # no face: a row that says so, and no label
    assert len(none) == 1 and none["face_status"].item() == "not_found" and none["label"].item() == ""
    assert none["p_female"].item() == ""
    assert "no face found" in " ".join(r.err.split())
    assert all(len(lm.split()) == 10 for lm in two["landmarks"])


def test_match_uses_the_largest_face(tmp_path):
    from facecli.face.preprocess import Preprocessing
    from facecli.pipeline import prepare_image

    img = np.full((600, 900, 3), 200, np.uint8)
    img[50:562, 0:512] = astronaut()
    small = cv2.resize(astronaut(), (256, 256))
    img[300:556, 600:856] = small
    p = write(tmp_path / "group.png", img)
    crops = prepare_image(p, 0, Preprocessing(size=64, detect="auto"))
    assert len(crops) == 1 and crops[0].box[2] > 80  # the big face, not the small one
