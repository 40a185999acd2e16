"""Shared fixtures: small generated datasets, a CLI runner, and tiny models trained once per session.

Nothing here reads ../shared or the network: every image is generated.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ["COLUMNS"] = "200"  # help texts and tables render unwrapped, so tests can find phrases in them

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

TINY = ["--backbone", "test_efficientnet", "--pretrained", "none", "--size", "32", "--workers", "0"]
KINDS = ("blurred", "foggy", "lowlight", "noisy", "rainy", "resized", "sunny")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the real ``facecli`` entry point in-process; returns exit code, stdout and stderr."""
    from facecli.cli import main

    def run(*args) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["facecli", *map(str, args)])
        capsys.readouterr()
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        cap = capsys.readouterr()
        return CliResult(code, cap.out, cap.err)

    return run


def pattern_image(seed: int, size: int = 64) -> np.ndarray:
    """A BGR image of random coloured shapes, distinct for each seed (a synthetic 'face')."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), rng.integers(30, 220, 3), np.uint8)
    for _ in range(6):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        x, y = rng.integers(4, size - 4, 2)
        r = int(rng.integers(4, size // 4))
        if rng.random() < 0.5:
            cv2.circle(img, (int(x), int(y)), r, c, -1)
        else:
            cv2.rectangle(img, (int(x) - r, int(y) - r), (int(x) + r, int(y) + r), c, -1)
    return img


def distort(img: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """Cheap stand-ins for FACECOM's seven degradations."""
    rng = np.random.default_rng(seed)
    if kind == "blurred":
        return cv2.GaussianBlur(img, (7, 7), 2)
    if kind == "foggy":
        return cv2.addWeighted(img, 0.6, np.full_like(img, 200), 0.4, 0)
    if kind == "lowlight":
        return (img * 0.35).astype(np.uint8)
    if kind == "noisy":
        return np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    if kind == "rainy":
        out = img.copy()
        for _ in range(20):
            x, y = rng.integers(0, img.shape[1], 2)
            cv2.line(out, (int(x), int(y)), (int(x) + 3, int(y) + 10), (200, 200, 200), 1)
        return out
    if kind == "resized":
        h, w = img.shape[:2]
        return cv2.resize(cv2.resize(img, (w // 4, h // 4)), (w, h))
    if kind == "sunny":
        out = img.copy()
        cv2.circle(out, (img.shape[1] // 4, img.shape[0] // 4), img.shape[0] // 5, (255, 255, 255), -1)
        return cv2.GaussianBlur(out, (5, 5), 0)
    raise ValueError(kind)


def write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def gender_image(label: int, seed: int, size: int = 48) -> np.ndarray:
    """Class 0 ('male'): bluish with horizontal bars; class 1 ('female'): reddish with vertical bars."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = (180, 60, 40) if label == 0 else (40, 60, 180)
    img = np.clip(img + rng.integers(-25, 25, img.shape), 0, 255).astype(np.uint8)
    for k in range(2, size, 8):
        if label == 0:
            img[k : k + 3, :] = 250
        else:
            img[:, k : k + 3] = 250
    return img


@pytest.fixture(scope="session")
def gender_data(tmp_path_factory) -> Path:
    """A Task A folder: train/{male,female} (16 + 8) and val/{male,female} (8 + 4)."""
    root = tmp_path_factory.mktemp("taskA")
    for split, counts in (("train", (16, 8)), ("val", (8, 4))):
        for label, name in enumerate(("male", "female")):
            for i in range(counts[label]):
                img = gender_image(label, 1000 * label + i + 7 * len(split))
                write(root / split / name / f"{name}_{split}_{i:03d}.jpg", img)
    return root


def make_identity_root(root: Path, identities: list[str], photos: dict[str, int], seed: int = 0) -> Path:
    """ROOT/<identity>/<stem>.jpg (+ distortion/<stem>_<kind>.jpg for every kind)."""
    for n, ident in enumerate(identities):
        base = pattern_image(seed * 1000 + n)
        for p in range(photos.get(ident, 1)):
            shift = np.roll(base, 2 * p, axis=1)  # another 'photo' of the same person
            stem = f"{ident}_{p:04d}"
            write(root / ident / f"{stem}.jpg", shift)
            for k, kind in enumerate(KINDS):
                write(root / ident / "distortion" / f"{stem}_{kind}.jpg", distort(shift, kind, seed=n * 10 + k))
    return root


@pytest.fixture(scope="session")
def identity_data(tmp_path_factory) -> Path:
    """A Task B folder: train/ with 10 identities (some with 2 photos) and val/ with 4 other identities."""
    root = tmp_path_factory.mktemp("taskB")
    train_ids = [f"person_{i:02d}" for i in range(10)]
    make_identity_root(root / "train", train_ids, {"person_00": 2, "person_01": 2, "person_02": 3}, seed=1)
    val_ids = [f"visitor_{i:02d}" for i in range(4)]
    make_identity_root(root / "val", val_ids, {"visitor_00": 2}, seed=2)
    return root


@pytest.fixture(scope="session")
def session_cli():
    """The CLI runner for session-scoped fixtures (no capsys): returns the exit code."""
    from facecli.cli import main

    def run(*args) -> int:
        old = sys.argv
        sys.argv = ["facecli", *map(str, args)]
        try:
            main()
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 0
        finally:
            sys.argv = old
        return 0

    return run


# fixtures that train and export a tiny model: every test using one needs the training stack
TRAIN_FIXTURES = {"gender_model", "identity_model", "aligned_gender_onnx", "gender_run", "identity_run"}


def pytest_collection_modifyitems(items) -> None:
    """Mark the tests that need facecli[train] (torch, timm), so an inference install runs the rest with
    ``pytest -m "not train"``: those using a training fixture, and those marked by hand."""
    for item in items:
        if TRAIN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.train)


@pytest.fixture(scope="session")
def gender_model(gender_data, tmp_path_factory, session_cli) -> tuple[Path, Path]:
    """(run folder, exported ONNX) of a tiny gender model trained for two epochs."""
    out = tmp_path_factory.mktemp("gender_run")
    run = out / "run"
    assert session_cli("train", "gender", gender_data, "--out", run, "--epochs", "2", *TINY) == 0
    onnx_path = out / "gender.onnx"
    assert session_cli("export", "gender", run, "--out", onnx_path) == 0
    return run, onnx_path


@pytest.fixture(scope="session")
def identity_model(identity_data, tmp_path_factory, session_cli) -> tuple[Path, Path]:
    """(run folder, exported ONNX) of a tiny embedder trained for two epochs."""
    out = tmp_path_factory.mktemp("identity_run")
    run = out / "run"
    code = session_cli("train", "identity", identity_data, "--out", run, "--epochs", "2", "--batch-size", "16",
                       "--embedding-dim", "32", *TINY)
    assert code == 0
    onnx_path = out / "embedder.onnx"
    assert session_cli("export", "identity", run, "--out", onnx_path) == 0
    return run, onnx_path


def signal_after_parts(args: list[str], partial: Path, parts: int, sig: int, env: dict | None = None,
                       stderr: int | None = None) -> subprocess.Popen:
    """Run ``facecli ARGS`` in a fresh process and send it ``sig`` once ``parts`` parts are in ``partial`` (or
    after 120 s); returns the process, waited for."""
    root = Path(__file__).resolve().parents[1]
    env = env or {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-c", "from facecli.cli import main; main()", *args], env=env,
                         stdout=subprocess.DEVNULL, stderr=stderr or subprocess.DEVNULL, text=True)
    t0 = time.monotonic()
    while len(list(partial.glob("part-*.json"))) < parts and time.monotonic() - t0 < 120 and p.poll() is None:
        time.sleep(0.01)
    p.send_signal(sig)
    return p
