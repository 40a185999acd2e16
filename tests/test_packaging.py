"""The wheel users install: inference only by default, training under facecli.training, models inside."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                        str(ROOT)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "No module named" in r.stderr:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr
    return next(out.glob("facecli-*.whl"))


def test_the_wheel_installs_only_the_facecli_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"facecli"}  # no generic top-level 'training' (or 'models') package
    for need in ("facecli/training/train_gender.py", "facecli/training/skeleton.py", "facecli/cli/classify.py",
                 "facecli/models/gender.onnx", "facecli/models/identity.onnx", "facecli/models/mtcnn_onet.onnx",
                 "facecli/models/README.md"):
        assert need in names, need


def test_the_default_install_has_no_training_stack(wheel):
    meta = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA"))
    lines = zipfile.ZipFile(wheel).read(meta).decode().splitlines()
    core = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    names = {c.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower() for c in core}
    assert "onnxruntime" in names and "onnxruntime-gpu" not in names
    assert not names & {"torch", "torchvision", "timm", "albumentations", "onnx", "onnxscript", "safetensors"}
    extras = {ln.split("extra ==")[1].strip().strip("'\"") for ln in lines if "extra ==" in ln}
    assert {"gpu", "train", "test"} <= extras
