"""The run-options record, the one home of choices, result objects, the detector registry, and matching
with the gallery's own model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import facecli
from facecli import FacecliError, RunOptions
from tests.conftest import make_identity_root


def test_run_options_are_checked_once_and_name_what_is_wrong():
    opts = RunOptions.of(detect="auto", batch_size=8)
    assert (opts.detect, opts.batch_size, opts.device) == ("auto", 8, "auto")
    with pytest.raises(FacecliError, match="unknown option 'batchsize'"):
        RunOptions.of(batchsize=8)
    with pytest.raises(FacecliError, match="batch_size"):
        RunOptions(batch_size=0)
    with pytest.raises(FacecliError, match="workers"):
        RunOptions(workers=0)
    with pytest.raises(FacecliError, match="detect must be one of auto, mtcnn, none"):
        RunOptions(detect="haar")


def test_the_cli_and_the_api_share_one_choice_set(cli):
    from facecli.face.detectors import DETECTORS
    from facecli.options import Detect, choices

    assert set(choices(Detect)) == {"auto", "none", *DETECTORS}
    r = cli("classify", ".", "--detect", "haar")
    assert r.code == 2 and "auto" in r.err and "mtcnn" in r.err


def test_a_registered_detector_is_one_class_and_one_line(monkeypatch):
    """A detector that finds one fixed face: registered by one registry line, it is a valid ``detect`` value
    and the pipeline crops and labels its face."""
    from facecli.face import detectors
    from facecli.face.detectors import Face
    from facecli.face.preprocess import Preprocessing
    from facecli.pipeline import crops_from_array

    class CornerDetector:
        box_fraction = 0.5

        def detect(self, bgr, *, largest_only=False, **options):
            pts = np.array([[10, 10], [20, 10], [15, 15], [11, 20], [19, 20]], np.float32)
            return [Face((5, 5, 20, 20), pts, 0.9)]

    import sys
    import types

    mod = types.ModuleType("corner_detector")
    mod.CornerDetector = CornerDetector
    monkeypatch.setitem(sys.modules, "corner_detector", mod)
    monkeypatch.setitem(detectors.DETECTORS, "corner", "corner_detector:CornerDetector")
    spec = Preprocessing(size=32, detect="corner")
    crop = crops_from_array(np.zeros((64, 64, 3), np.uint8), 0, spec)[0]
    assert crop.face_status == "detected" and crop.box == (5, 5, 20, 20) and crop.pixels.shape == (32, 32, 3)
    from facecli.face.preprocess import margin_for_crop

    assert margin_for_crop(0.8, "corner") == 1.6


def test_result_objects_save_what_the_cli_writes(tmp_path):
    img = np.zeros((40, 40, 3), np.uint8)
    run = facecli.classify_images([img, img])
    assert isinstance(run, facecli.ClassifyRun) and run.images == 2 and len(run.table) == 2
    out = run.save(tmp_path / "r.csv")
    assert pd.read_csv(out, keep_default_na=False)["face_status"].tolist() == ["not_found", "not_found"]
    assert dict(run.summary_rows())["images with no face found (no label)"] == 2


@pytest.mark.train
def test_match_without_model_uses_the_model_that_built_the_gallery(tmp_path, cli, identity_model):
    _, onnx_path = identity_model
    root = make_identity_root(tmp_path / "ids", ["ann", "bob"], {}, seed=7)
    assert cli("gallery", "build", root, "-g", tmp_path / "g", "--model", onnx_path).code == 0
    r = cli("match", root, "-g", tmp_path / "g", "--out", tmp_path / "m.csv")  # no --model
    assert r.code == 0, r.err
    assert f"model: identity model {onnx_path}" in r.err
    run = facecli.match_probes(root, tmp_path / "g")
    assert run.result is not None and run.result.metrics["probes"] == 14
    other = cli("match", root, "-g", tmp_path / "g", "--out", tmp_path / "m2.csv", "--model",
                facecli.runtime.default_model_path("identity"))
    assert other.code == 2 and "rebuild the gallery" in other.err
