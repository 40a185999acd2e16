"""The public Python API: paths and in-memory arrays alike, values checked as in the CLI, the model card."""

from __future__ import annotations

import json
import pydoc
import subprocess
import sys

import cv2
import numpy as np
import pytest

import facecli
from facecli import FacecliError, ModelCard
from tests.conftest import gender_image, make_identity_root, pattern_image, write


def test_the_package_lists_its_api():
    for name in facecli.__all__:
        assert hasattr(facecli, name), name
    text = pydoc.render_doc(facecli, renderer=pydoc.plaintext)
    for verb in ("load_model", "detect_faces", "classify_images", "embed_images", "build_gallery", "add_to_gallery",
                 "load_gallery", "match_probes", "calibrate_threshold", "evaluate_gender", "evaluate_identity"):
        assert verb in text
        assert getattr(facecli, verb).__doc__, verb


def test_classify_a_numpy_image_like_its_file(tmp_path, gender_model):
    _, onnx_path = gender_model
    bgr = gender_image(1, 5)
    path = write(tmp_path / "f.png", bgr)
    rgb = facecli.load_image(path)
    assert rgb.dtype == np.uint8 and np.array_equal(rgb, bgr[:, :, ::-1])  # load_image gives RGB
    model = facecli.load_model(onnx_path, "gender")
    run = facecli.classify_images([rgb, path, np.zeros((4, 4), np.float32)], model)
    assert run.images == 3 and ("images", 3) in run.summary_rows()
    df = run.table
    assert list(df["path"][:2]) == ["<array 0>", str(path)]
    assert df["p_female"][0] == pytest.approx(df["p_female"][1], abs=1e-6)
    assert df["label"][0] in ("male", "female") and df["error"][0] == ""
    assert "uint8" in df["error"][2] and df["label"][2] == ""  # a bad array is a row with an error, not a crash
    one = facecli.classify_images(rgb, onnx_path).table  # a single array, a model path
    assert len(one) == 1 and one["p_female"][0] == pytest.approx(df["p_female"][0], abs=1e-6)
    gray = facecli.classify_images(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), model).table
    assert gray["error"][0] == ""


def test_embed_build_add_and_match_through_the_api(tmp_path, identity_model):
    _, onnx_path = identity_model
    root = make_identity_root(tmp_path / "ids", ["ann", "bob", "cid"], {}, seed=3)
    built = facecli.build_gallery(root, onnx_path, out=tmp_path / "g")
    assert built.report.identities == 3 and (tmp_path / "g" / "gallery.json").is_file()
    assert list(built.table["identity"]) == ["ann", "bob", "cid"]
    more = make_identity_root(tmp_path / "more", ["dan"], {}, seed=4)
    added = facecli.add_to_gallery(tmp_path / "g", more)  # no model: the one that built the gallery
    assert (added.added, added.replaced) == (1, 0) and set(added.gallery.identities) == {"ann", "bob", "cid", "dan"}
    probe = facecli.load_image(root / "bob" / "bob_0000.jpg")
    run = facecli.match_probes([probe], tmp_path / "g", onnx_path, threshold=0.0, top_k=2)
    assert run.table["identity"][0] == "bob" and run.threshold_source == "given" and run.result is None
    emb = facecli.embed_images([probe, root / "bob" / "bob_0000.jpg"], onnx_path)
    assert emb.ok.all() and np.allclose(emb.vectors[0], emb.vectors[1], atol=1e-5)
    assert np.linalg.norm(emb.vectors[0]) == pytest.approx(1.0, abs=1e-4)
    scored = facecli.match_probes(root, facecli.load_gallery(tmp_path / "g"), onnx_path)
    assert scored.result is not None and scored.threshold_source.startswith("model")


def test_detect_faces_takes_arrays_and_says_when_it_cannot():
    assert facecli.detect_faces(pattern_image(1, 96)[:, :, ::-1].copy()) == []
    with pytest.raises(FacecliError, match="uint8"):
        facecli.detect_faces(np.zeros((8, 8, 3), np.float64))


@pytest.mark.parametrize("call, needle", [
    (lambda: facecli.classify_images(np.zeros((8, 8, 3), np.uint8), batch_size=0), "batch_size"),
    (lambda: facecli.classify_images(np.zeros((8, 8, 3), np.uint8), detect="maybe"), "detect"),
    (lambda: facecli.classify_images(np.zeros((8, 8, 3), np.uint8), threshold=1.5), "threshold"),
    (lambda: facecli.classify_images(np.zeros((8, 8, 3), np.uint8), device="tpu"), "device"),
    (lambda: facecli.load_model(device="tpu"), "device"),
    (lambda: facecli.load_model(task="age"), "task"),
    (lambda: facecli.match_probes([np.zeros((8, 8, 3), np.uint8)], "nowhere", top_k=0), "top_k"),
    (lambda: facecli.calibrate_threshold("d", "g", far=5), "far"),
    (lambda: facecli.calibrate_threshold("d", "g", objective="best"), "objective"),
    (lambda: facecli.evaluate_gender("d", split="test"), "split"),
    (lambda: facecli.classify_images([]), "no images"),
    (lambda: facecli.load_image("/nowhere/x.jpg"), "cannot read"),
])
def test_the_api_checks_values_like_the_cli(call, needle):
    with pytest.raises(FacecliError, match=needle):
        call()


def test_model_card_validates_and_reads_old_metadata():
    gender = facecli.load_model(task="gender")
    assert gender.shipped and "shipped" in gender.describe() and "cpu" in gender.describe()
    card = gender.card
    assert card.task == "gender" and card.labels == ("male", "female") and 0 < card.threshold < 1
    assert ModelCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    with pytest.raises(ValueError, match="threshold"):
        ModelCard("gender", "x", card.preprocessing, threshold=1.5)
    with pytest.raises(ValueError, match="task"):
        ModelCard("age", "x", card.preprocessing)
    with pytest.raises(ValueError, match="labels"):
        ModelCard("gender", "x", card.preprocessing, labels=("a",))
    ident = facecli.load_model(task="identity").card
    assert ident.embedding_dim == 128 and ident.output == "l2_normalised_embedding"


def test_one_function_decides_the_threshold():
    card = facecli.load_model(task="identity").card
    assert facecli.resolve_threshold(card, 0.3, 0.7, "calibrated") == (0.3, "given")
    assert facecli.resolve_threshold(card, None, 0.7, "calibrated") == (0.7, "calibrated")
    t, src = facecli.resolve_threshold(card)
    assert t == pytest.approx(card.threshold) and src.startswith("model")
    untuned = ModelCard("identity", "x", card.preprocessing)
    assert facecli.resolve_threshold(untuned) == (0.5, "built-in default")
    with pytest.raises(FacecliError, match="threshold"):
        facecli.resolve_threshold(card, float("nan"))


BLOCK_TRAINING = ("import sys\n"
                  "for m in ('torch', 'torchvision', 'timm', 'albumentations', 'onnx', 'onnxscript', 'safetensors'):\n"
                  "    sys.modules[m] = None\n")


def test_inference_needs_no_training_stack(tmp_path, gender_model):
    """classify, with torch, timm, onnx and the rest made unimportable, works as the light install does."""
    _, onnx_path = gender_model
    write(tmp_path / "p" / "a.jpg", gender_image(0, 1))
    code = BLOCK_TRAINING + ("sys.argv = ['facecli', 'classify', sys.argv[1], '--model', sys.argv[2], '--out', "
                             "sys.argv[3]]\nfrom facecli.cli import main\nmain()\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p"), str(onnx_path), str(tmp_path / "r.csv")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r.csv").is_file()


def test_train_without_the_extra_says_what_to_install(tmp_path, gender_data):
    code = BLOCK_TRAINING + "sys.argv = ['facecli', 'train', 'gender', sys.argv[1]]\nfrom facecli.cli import main\nmain()\n"
    r = subprocess.run([sys.executable, "-c", code, str(gender_data)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("error: ") and "facecli[train]" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_readme_api_example_runs(tmp_path, monkeypatch):
    """The README's Python example, as written, on a real face photo and small generated Task B folders."""
    import re
    from pathlib import Path

    from skimage import data

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "photo.jpg", data.astronaut()[:, :, ::-1])
    make_identity_root(tmp_path / "Task_B" / "train", ["ann", "bob", "cid"], {"ann": 2}, seed=5)
    make_identity_root(tmp_path / "Task_B" / "val", ["ann", "bob"], {}, seed=5)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the project's own README
    assert len(scope["faces"]) == 1 and scope["vectors"].shape == (2, 128)
    assert (tmp_path / "gallery" / "gallery.json").is_file() and len(scope["run"].table) == 14
    groups = scope["groups"].table  # generated patterns: no face is found, so every row says so
    assert len(groups) >= 14 and "cluster" in groups and set(groups["face_status"]) <= {"not_found", "fallback", "detected"}


def test_cuda_provider_choice_preloads_and_explains(monkeypatch):
    """Without a GPU here, the CUDA branch is driven by faking ONNX Runtime's providers and the device node."""
    import onnxruntime as ort

    from facecli import runtime

    called = []
    monkeypatch.setattr(runtime, "_PRELOADED", False)
    monkeypatch.setattr(ort, "preload_dlls", lambda *a, **k: called.append(1), raising=False)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(runtime, "_cuda_device_present", lambda: True)
    assert runtime.choose_providers("auto")[0] == "CUDAExecutionProvider" and called == [1]
    assert runtime.choose_providers("cpu") == ["CPUExecutionProvider"]
    assert runtime.gpu_hint() == ""
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert "onnxruntime-gpu[cuda,cudnn]" in runtime.gpu_hint()  # a GPU the runtime cannot use: say how
    assert runtime.choose_providers("auto") == ["CPUExecutionProvider"]
    with pytest.raises(FacecliError, match="onnxruntime-gpu"):
        runtime.choose_providers("cuda")
    monkeypatch.setattr(runtime, "_cuda_device_present", lambda: False)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(FacecliError, match="no CUDA GPU"):
        runtime.choose_providers("cuda")


def test_one_shot_commands_start_without_pandas(tmp_path, identity_data):
    """gallery build, gallery info and verify (one-shot commands whose start-up is most of their time) never
    import pandas: with pandas made unimportable they still work, and verify answers as with it."""
    code = ("import sys\nsys.modules['pandas'] = None\nfrom facecli.cli import main\n"
            "sys.argv = ['facecli', *sys.argv[1:]]\nmain()\n")
    g = tmp_path / "g"
    for args in (["gallery", "build", str(identity_data / "train"), "--gallery", str(g)], ["gallery", "info", str(g)]):
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    assert "identities" in r.stdout
    from skimage import data

    astro = write(tmp_path / "astro.jpg", data.astronaut()[:, :, ::-1])
    other = write(tmp_path / "astro2.jpg", cv2.resize(cv2.flip(data.astronaut()[:, :, ::-1], 1)[20:480, 10:470], (300, 300)))
    r = subprocess.run([sys.executable, "-c", code, "verify", str(astro), str(other), "--json"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == facecli.verify(astro, other).to_dict()
