"""CLI conventions users rely on: one-line errors for every bad value (exit 2), choices listed in --help,
--version and ``python -m facecli``, the exit status of a batch, and what each command says it used."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import gender_image, write
from tests.test_cli_errors import assert_one_line_error


@pytest.fixture
def photos(tmp_path):
    write(tmp_path / "p" / "a.jpg", gender_image(0, 1))
    return tmp_path / "p"


def test_classify_batch_size_zero(cli, photos, tmp_path):
    assert_one_line_error(cli("classify", photos, "--batch-size", "0", "--out", tmp_path / "r.csv"), "--batch-size")
    assert not (tmp_path / "r.csv").exists()


def test_classify_threshold_above_one(cli, photos):
    assert_one_line_error(cli("classify", photos, "--threshold", "1.5"), "--threshold")


def test_classify_device_tpu(cli, photos):
    assert_one_line_error(cli("classify", photos, "--device", "tpu"), "--device", "'tpu'")


def test_match_top_k_zero(cli, photos):
    assert_one_line_error(cli("match", photos, "--top-k", "0"), "--top-k")


def test_calibrate_detect_bogus(cli, photos):
    assert_one_line_error(cli("calibrate", photos, "--detect", "bogus"), "--detect", "'bogus'")


def test_calibrate_far_five(cli, photos):
    assert_one_line_error(cli("calibrate", photos, "--far", "5"), "--far")


def test_train_epochs_zero(cli, gender_data, tmp_path):
    assert_one_line_error(cli("train", "gender", gender_data, "--epochs", "0", "--out", tmp_path / "run"), "--epochs")
    assert not (tmp_path / "run").exists()


def test_train_device_tpu(cli, gender_data, tmp_path):
    assert_one_line_error(cli("train", "gender", gender_data, "--device", "tpu", "--out", tmp_path / "run"),
                          "--device")


@pytest.mark.train
def test_train_device_cuda_without_a_gpu(cli, gender_data, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert_one_line_error(cli("train", "gender", gender_data, "--device", "cuda", "--out", tmp_path / "run"),
                          "--device cuda", "no CUDA GPU")


def test_classify_device_cuda_without_a_usable_gpu(cli, photos):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has a CUDA provider")
    assert_one_line_error(cli("classify", photos, "--device", "cuda"), "--device cuda", "onnxruntime-gpu")


def test_choices_are_listed_in_help(cli):
    text = cli("classify", "--help").out
    for word in ("auto", "cpu", "cuda", "none", "a file, not a folder"):
        assert word in text, word
    assert "distorted" in cli("match", "--help").out and "far" in cli("calibrate", "--help").out


def test_version_and_python_m(cli):
    import facecli

    r = cli("--version")
    assert r.code == 0 and r.out.strip() == f"facecli {facecli.__version__}"
    p = subprocess.run([sys.executable, "-m", "facecli", "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == f"facecli {facecli.__version__}"


def test_evaluate_gender_refuses_train_only_folder_unless_told(cli, tmp_path, gender_data, gender_model):
    import shutil

    data = tmp_path / "taskA"
    shutil.copytree(gender_data / "train", data / "train")
    r = cli("evaluate", "gender", data, "--model", gender_model[1], "--out", tmp_path / "ev")
    assert_one_line_error(r, "no val/", "--split train")
    assert not (tmp_path / "ev").exists()
    r = cli("evaluate", "gender", data, "--model", gender_model[1], "--out", tmp_path / "ev", "--split", "train")
    assert r.code == 0, r.err
    assert str(data / "train") in r.err  # the report says which folder it scored
    assert "female precision / recall / F1" in r.err and "male precision / recall / F1" in r.err  # per class


def test_exit_status_one_when_every_input_failed(cli, tmp_path, gender_model):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"not a jpeg")
    (bad / "b.png").write_bytes(b"")
    r = cli("classify", bad, "--model", gender_model[1], "--out", tmp_path / "r.csv")
    assert r.code == 1 and "every input failed" in r.err
    assert (tmp_path / "r.csv").read_text().count("\n") == 3  # header + one error row per file
    write(bad / "c.jpg", gender_image(1, 2))  # one good file: the batch ran, exit 0
    assert cli("classify", bad, "--model", gender_model[1], "--out", tmp_path / "r.csv").code == 0


def test_commands_say_which_model_device_and_output(cli, tmp_path, photos, gender_model, identity_model,
                                                    identity_data):
    r = cli("classify", photos, "--out", tmp_path / "r.csv")
    assert r.code == 0, r.err
    assert "gender-int8.onnx (shipped" in r.err and "on cpu" in r.err and str((tmp_path / "r.csv").resolve()) in r.err
    r = cli("classify", photos, "--model", gender_model[1], "--out", tmp_path / "r.csv")
    assert f"{gender_model[1]} (user model" in r.err
    r = cli("gallery", "build", identity_data / "train", "--model", identity_model[1], "--gallery", tmp_path / "g")
    assert r.code == 0 and f"wrote gallery {(tmp_path / 'g').resolve()}" in r.err


def test_a_missing_input_is_refused_before_any_work(cli, tmp_path):
    write(tmp_path / "a.jpg", np.zeros((8, 8, 3), np.uint8))
    r = cli("classify", tmp_path / "a.jpg", tmp_path / "nope.jpg", "--out", tmp_path / "r.csv")
    assert_one_line_error(r, "input not found", "nope.jpg")
    assert not (tmp_path / "r.csv").exists()


def test_evaluate_identity_refuses_train_only_folder_unless_told(cli, tmp_path, identity_data, identity_model):
    import shutil

    data = tmp_path / "taskB"
    shutil.copytree(identity_data / "train", data / "train")
    assert_one_line_error(cli("evaluate", "identity", data, "--model", identity_model[1], "--out", tmp_path / "ev"),
                          "no val/", "--split train")
    r = cli("evaluate", "identity", data, "--model", identity_model[1], "--out", tmp_path / "ev", "--split", "train")
    assert r.code == 0, r.err
    assert (tmp_path / "ev" / "facecom_metrics.json").is_file()


def test_evaluate_exits_one_when_every_image_failed(cli, tmp_path, gender_model):
    for name in ("male", "female"):
        (tmp_path / "d" / name).mkdir(parents=True)
        (tmp_path / "d" / name / "x.jpg").write_bytes(b"not an image")
    r = cli("evaluate", "gender", tmp_path / "d", "--model", gender_model[1], "--out", tmp_path / "ev")
    assert r.code == 1 and "Traceback" not in r.err
    assert r.err.strip().splitlines()[-1].startswith("error: every one of the 2 images")
    assert (tmp_path / "ev" / "predictions.csv").read_text().count("not a decodable image") == 2
