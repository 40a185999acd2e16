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


@pytest.mark.train
def test_the_wheel_installs_only_the_facecli_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"facecli"}  # no generic top-level 'training' (or 'models') package
    for need in ("facecli/training/train_gender.py", "facecli/training/skeleton.py", "facecli/cli/classify.py",
                 "facecli/models/gender.onnx", "facecli/models/identity.onnx", "facecli/models/mtcnn_onet.onnx",
                 "facecli/models/README.md"):
        assert need in names, need


@pytest.mark.train
def test_the_default_install_has_no_training_stack(wheel):
    meta = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA"))
    lines = zipfile.ZipFile(wheel).read(meta).decode().splitlines()
    core = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    names = {c.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower() for c in core}
    assert "onnxruntime" in names and "onnxruntime-gpu" not in names
    assert not names & {"torch", "torchvision", "timm", "albumentations", "onnx", "onnxscript", "safetensors"}
    extras = {ln.split("extra ==")[1].strip().strip("'\"") for ln in lines if "extra ==" in ln}
    assert {"gpu", "train", "test"} <= extras


@pytest.mark.train
def test_the_wheel_carries_licence_metadata_and_the_face_subpackage(wheel):
    z = zipfile.ZipFile(wheel)
    names = z.namelist()
    assert "facecli/face/detectors.py" in names and "facecli/models/__init__.py" in names
    assert any(n.endswith("LICENSE") for n in names)
    meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta and "Classifier: Programming Language :: Python :: 3" in meta
    assert "Project-URL: " in meta


@pytest.mark.train
def test_the_repository_has_no_symlink_and_one_name_per_module():
    tracked = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True).stdout
    if not tracked:
        pytest.skip("not a git checkout")
    assert not [ln for ln in tracked.splitlines() if ln.startswith("120000")]  # mode 120000 = symlink
    code = ("import facecli.training, facecli.models, facecli.runtime as r, pathlib; "
            "print(pathlib.Path(facecli.training.__file__).parent, r.models_dir())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    training, models = out.stdout.split()
    assert Path(training) == ROOT / "training" and Path(models) == ROOT / "models"
    # only those two: the checkout's other folders do not become part of facecli, and facecli is itself once
    code = ("import importlib.util, facecli, facecli.options; "
            "print([importlib.util.find_spec(n) is None for n in ('facecli.tests', 'facecli.scripts', 'facecli.facecli')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[True, True, True]", out.stdout + out.stderr


def test_import_of_training_without_the_extra_says_what_to_install(tmp_path):
    """With torch and timm made unimportable, `import facecli.training` fails with the one-line install hint."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nclass _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'timm'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, _Block())\n")
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    r = subprocess.run([sys.executable, "-c", "import facecli.training"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: training and export need the train extra (") and "torch" in last
    assert last.endswith("missing): pip install 'facecli[train]'")
