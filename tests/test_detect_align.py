"""Face detection (MTCNN in ONNX Runtime) and five-point alignment, on generated and scikit-image images."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import tomllib
from packaging.requirements import Requirement
from skimage import data

from facecli.decode import read_image
from facecli.face.align import align_face, estimate_similarity, template_points
from facecli.face.detectors import FALLBACK, detect_faces
from facecli.face.mtcnn import FRAME_PRIOR_LANDMARKS
from facecli.face.preprocess import Preprocessing
from facecli.pipeline import crops_from_array
from tests.conftest import TINY, write

ROOT = Path(__file__).resolve().parents[1]
EYES = np.array([[204, 100], [246, 103]], np.float32)  # astronaut(): Eileen Collins' eyes (x, y)


def astronaut() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def eyes_error(face, eyes: np.ndarray) -> float:
    return float(np.linalg.norm(face.landmarks[:2] - eyes, axis=1).max())


# ---------------------------------------------------------------- geometry


def test_a_known_similarity_transform_is_recovered():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    angle, scale, t = np.deg2rad(23.0), 0.37, np.array([41.0, -7.5])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + t
    m = estimate_similarity(src, dst)
    assert np.allclose(m[:, :2], rot, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-9)
    # with noise it is the least-squares fit: residuals no larger than the noise
    noisy = dst + rng.normal(0, 0.5, dst.shape)
    m2 = estimate_similarity(src, noisy)
    assert np.abs(src @ m2[:, :2].T + m2[:, 2] - noisy).max() < 2.0
    with pytest.raises(ValueError):
        estimate_similarity(np.zeros((5, 2)), dst)


def test_alignment_puts_the_landmarks_on_the_template():
    img = np.zeros((300, 400, 3), np.uint8)
    pts = np.array([[150, 120], [210, 110], [185, 150], [160, 190], [215, 182]], np.float32)
    for k, (x, y) in enumerate(pts):  # a distinct colour at each landmark
        cv2.circle(img, (int(x), int(y)), 3, (40 * (k + 1), 255 - 40 * k, 128), -1)
    out = align_face(img, pts, 112, "arcface")
    m = estimate_similarity(pts, template_points("arcface", 112))
    mapped = pts @ m[:, :2].T + m[:, 2]
    assert out.shape == (112, 112, 3)
    for k, (x, y) in enumerate(np.round(mapped).astype(int)):
        assert tuple(out[y, x]) == (40 * (k + 1), 255 - 40 * k, 128)
    assert np.abs(mapped - template_points("arcface", 112)).max() < 6  # a face-like shape fits closely
    # zoom > 1 shows more context: the template shrinks towards the centre
    assert np.ptp(template_points("arcface", 112, zoom=2.0)[:, 0]) < np.ptp(template_points("arcface", 112)[:, 0])


def test_aligned_crop_of_a_rotated_face_is_upright():
    img = astronaut()
    face = detect_faces(img)[0]
    rot = cv2.getRotationMatrix2D((256, 256), 30, 1.0)
    turned = cv2.warpAffine(img, rot, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    spec = Preprocessing(size=112, detect="auto", template="arcface")
    a = crops_from_array(img, 0, spec)[0]
    b = crops_from_array(turned, 0, spec)[0]
    assert a.face_status == b.face_status == "detected"
    moved = face.landmarks @ rot[:, :2].T + rot[:, 2]
    assert np.linalg.norm(b.landmarks - moved, axis=1).mean() < 6  # landmarks follow the rotation
    diff = np.abs(a.pixels.astype(np.float32) - b.pixels.astype(np.float32)).mean()
    assert diff < 25  # the two aligned crops show the same upright face


# ---------------------------------------------------------------- detection


def test_several_faces_are_kept_apart():
    two = np.hstack([astronaut(), cv2.flip(astronaut(), 1)])
    faces = detect_faces(two)
    assert len(faces) == 2 and {f.status for f in faces} == {"detected"}
    left, right = sorted(faces, key=lambda f: f.box[0])
    assert eyes_error(left, EYES) < 8
    mirrored = np.array([[1023 - 246, 103], [1023 - 204, 100]], np.float32)  # the flip swaps left and right eye
    assert eyes_error(right, mirrored) < 8


@pytest.mark.parametrize("name", ["chelsea", "coffee", "rocket", "brick"])
def test_no_face_in_images_without_one(name):
    img = getattr(data, name)()
    bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    assert detect_faces(bgr) == []


def test_tight_crop_is_found_by_padding():
    tight = astronaut()[85:155, 190:260]  # the face fills the frame, eyebrows to chin
    assert detect_faces(tight, pad=False, fallback=False) == []
    faces = detect_faces(tight)
    assert len(faces) == 1 and faces[0].status == "detected"
    assert eyes_error(faces[0], EYES - (190, 85)) < 6


def test_large_photo_is_searched_downscaled_and_mapped_back():
    big = cv2.resize(astronaut(), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    faces = detect_faces(big)
    assert len(faces) == 1
    assert eyes_error(faces[0], EYES * 4) < 24  # 4x the pixels: the same eyes within 6 original pixels


def test_glare_washed_face_falls_back_to_the_framing():
    frame = cv2.resize(astronaut()[20:270, 100:350], (250, 250))  # an LFW-style frame around her face
    assert detect_faces(frame)[0].status == "detected"
    yy, xx = np.mgrid[0:250, 0:250]
    glare = np.clip(1.6 - np.hypot(xx - 125, yy - 128) / 70, 0, 1)[..., None]
    sunny = np.clip(frame * (1 - glare) + 255 * glare * 1.4, 0, 255).astype(np.uint8)
    assert detect_faces(sunny, fallback=False) == []
    faces = detect_faces(sunny)
    assert len(faces) == 1 and faces[0].status == FALLBACK
    assert np.allclose(faces[0].landmarks, np.asarray(FRAME_PRIOR_LANDMARKS) * 250, atol=0.01)


def test_exif_rotated_photo_is_detected_upright(tmp_path):
    from PIL import Image

    upright = astronaut()
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # pixels as a phone held sideways stores them
    im = Image.fromarray(cv2.cvtColor(stored, cv2.COLOR_BGR2RGB))
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    im.save(path, exif=exif, quality=95)
    img = read_image(path)
    assert img.shape == upright.shape
    faces = detect_faces(img)
    assert len(faces) == 1 and eyes_error(faces[0], EYES) < 10


def test_the_pinned_opencv_is_the_one_installed():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    req = next(Requirement(d) for d in deps if Requirement(d).name.startswith("opencv"))
    assert md.version(req.name) in req.specifier, f"{req.name} {md.version(req.name)} is outside {req.specifier}"
    assert cv2.__version__ in req.specifier
    # what the detector and alignment rely on
    assert hasattr(cv2, "warpAffine") and hasattr(cv2, "copyMakeBorder") and hasattr(cv2, "INTER_AREA")


# ---------------------------------------------------------------- through the CLI


@pytest.fixture(scope="module")
def aligned_gender_onnx(gender_data, tmp_path_factory, session_cli) -> Path:
    """A tiny gender model trained with --align arcface (so detection defaults to auto)."""
    out = tmp_path_factory.mktemp("aligned_gender")
    assert session_cli("train", "gender", gender_data, "--out", out / "run", "--epochs", "1", "--align", "arcface",
                       *TINY) == 0
    assert session_cli("export", "gender", out / "run", "--out", out / "g.onnx") == 0
    return out / "g.onnx"


def test_a_model_trained_with_alignment_detects_and_aligns_by_default(tmp_path, cli, aligned_gender_onnx):
    from facecli.runtime import load_model

    spec = load_model(aligned_gender_onnx).preprocessing
    assert spec.template == "arcface" and spec.detect == "auto"
    folder = tmp_path / "p"
    write(folder / "two.png", np.hstack([astronaut(), astronaut()]))
    write(folder / "cat.png", cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))
    out = tmp_path / "r.csv"
    r = cli("classify", folder, "--out", out, "--model", aligned_gender_onnx)  # no --detect: the model's
    assert r.code == 0, r.err
    df = pd.read_csv(out, keep_default_na=False)
    cat = df[df["path"] == "cat.png"]
    assert len(cat) == 1 and cat["face_status"].item() == "not_found" and cat["label"].item() == ""
    two = df[df["path"] == "two.png"]
    assert list(two["face"]) == [0, 1] and set(two["face_status"]) == {"detected"}
    assert set(two["label"]) <= {"male", "female"} and two["p_female"].astype(float).between(0, 1).all()
    xs = sorted(float(lm.split()[0]) for lm in two["landmarks"])
    assert abs(xs[0] - 204) < 8 and abs(xs[1] - 716) < 8  # each face's left eye, one in each half
    assert "faces detected" in r.err and "no face found" in " ".join(r.err.split())  # the summary table
    # --detect none overrides the model: the centred crop, status off
    r = cli("classify", folder, "--out", out, "--model", aligned_gender_onnx, "--detect", "none")
    assert r.code == 0, r.err
    assert set(pd.read_csv(out, keep_default_na=False)["face_status"]) == {"off"}
