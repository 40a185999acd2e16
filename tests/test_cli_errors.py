"""Bad input at the top level: one clear line on stderr, exit status 2, no traceback, nothing written."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import write


def assert_one_line_error(r, *needles):
    assert r.code == 2, (r.code, r.err)
    lines = [ln for ln in r.err.strip().splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ")
    assert "Traceback" not in r.err
    for n in needles:
        assert n in r.err


def plain_onnx(path):
    onnx = pytest.importorskip("onnx")  # writing an ONNX file needs the onnx package (facecli[train])
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["input"], ["output"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 4, 4])])
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_missing_folder(cli, tmp_path):
    assert_one_line_error(cli("classify", tmp_path / "nowhere", "--out", tmp_path / "r.csv"), "not found")
    assert not (tmp_path / "r.csv").exists()


def test_empty_folder(cli, tmp_path, gender_model):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("classify", tmp_path / "empty", "--model", gender_model[1]), "no images found")


@pytest.mark.train
def test_wrong_gender_layout(cli, tmp_path):
    write(tmp_path / "data" / "cats" / "a.jpg", np.zeros((8, 8, 3), np.uint8))
    assert_one_line_error(cli("train", "gender", tmp_path / "data", "--out", tmp_path / "run"), "male/")
    assert_one_line_error(cli("evaluate", "gender", tmp_path / "data"), "male/")


def test_model_that_is_not_a_facecli_model(cli, tmp_path):
    write(tmp_path / "p" / "a.jpg", np.zeros((8, 8, 3), np.uint8))
    assert_one_line_error(cli("classify", tmp_path / "p", "--model", plain_onnx(tmp_path / "m.onnx")),
                          "not a facecli model")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01garbage" * 10)
    assert_one_line_error(cli("classify", tmp_path / "p", "--model", junk), "not an ONNX model")
    assert_one_line_error(cli("classify", tmp_path / "p", "--model", tmp_path / "none.onnx"), "does not exist")


def test_model_for_the_other_task(cli, tmp_path, gender_model):
    assert_one_line_error(cli("gallery", "build", tmp_path, "--model", gender_model[1]), "not a 'identity' model")


def test_missing_and_corrupt_gallery(cli, tmp_path, identity_model, identity_data):
    assert_one_line_error(cli("match", identity_data / "val", "--gallery", tmp_path / "nog"), "gallery not found")
    bad = tmp_path / "bad_gallery"
    bad.mkdir()
    (bad / "gallery.json").write_text("{not json")
    assert_one_line_error(cli("match", identity_data / "val", "--gallery", bad, "--model", identity_model[1]),
                          "corrupt")


def test_identity_folders_without_clean_images(cli, tmp_path, identity_model):
    root = tmp_path / "ids"
    (root / "empty_person").mkdir(parents=True)
    write(root / "only_distorted" / "distortion" / "x_0001_blurred.jpg", np.zeros((16, 16, 3), np.uint8))
    assert_one_line_error(cli("gallery", "build", root, "--model", identity_model[1], "--gallery", tmp_path / "g"),
                          "clean image")
    write(root / "good_person" / "good_0001.jpg", np.full((16, 16, 3), 90, np.uint8))
    r = cli("gallery", "build", root, "--model", identity_model[1], "--gallery", tmp_path / "g")
    assert r.code == 0, r.err
    assert "skipped" in r.err and "empty_person" in r.err and "only_distorted" in r.err


def test_bad_option_values(cli, tmp_path):
    write(tmp_path / "p" / "a.jpg", np.zeros((8, 8, 3), np.uint8))
    assert_one_line_error(cli("classify", tmp_path / "p", "--detect", "maybe"), "--detect")


@pytest.mark.train
def test_export_of_a_folder_that_is_not_a_run(cli, tmp_path):
    assert_one_line_error(cli("export", "gender", tmp_path, "--out", tmp_path / "m.onnx"), "not a facecli run folder")


def test_export_refuses_the_other_task(cli, tmp_path, gender_model):
    assert_one_line_error(cli("export", "identity", gender_model[0], "--out", tmp_path / "m.onnx"), "not a 'identity'")


@pytest.mark.parametrize("cmd", [[], ["train"], ["gallery"], ["classify", "--help"], ["match", "--help"],
                                 ["train", "gender", "--help"], ["train", "identity", "--help"],
                                 ["export", "gender", "--help"], ["calibrate", "--help"],
                                 ["evaluate", "identity", "--help"], ["gallery", "build", "--help"]])
def test_help_texts(cli, cmd):
    r = cli(*cmd)
    assert r.code in (0, 2)
    text = r.out + r.err
    assert "Usage" in text
    if cmd and cmd[-1] == "--help":
        assert "default" in text.lower() or "Commands" in text
