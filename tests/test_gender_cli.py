"""Gender end to end through the CLI: train, export, classify, evaluate; metrics checked against sklearn."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from tests.conftest import gender_image, write


def test_train_writes_a_complete_run_folder(gender_model):
    run, _ = gender_model
    for name in ("model.safetensors", "config.json", "metrics.csv", "curves.png"):
        assert (run / name).is_file(), name
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["task"] == "gender"
    assert cfg["labels"] == ["male", "female"]
    assert cfg["preprocessing"]["size"] == 32
    assert set(cfg["preprocessing"]) >= {"mean", "std", "colour", "crop"}
    assert 0.0 <= cfg["threshold"] <= 1.0
    assert cfg["data"]["train_images"] == 24 and cfg["data"]["val_images"] == 12
    hist = pd.read_csv(run / "metrics.csv")
    assert list(hist["epoch"]) == [1, 2]
    assert {"train_loss", "val_f1", "val_balanced_accuracy"} <= set(hist.columns)


@pytest.mark.train
def test_train_without_val_folder_holds_out_a_stratified_split(gender_data, tmp_path, cli):
    flat = tmp_path / "flat"
    for name in ("male", "female"):
        (flat / name).mkdir(parents=True)
        for f in (gender_data / "train" / name).iterdir():
            (flat / name / f.name).symlink_to(f)
    r = cli("train", "gender", flat, "--out", tmp_path / "run", "--epochs", "1", "--val-fraction", "0.25",
            "--backbone", "test_efficientnet", "--pretrained", "none", "--size", "32", "--workers", "0")
    assert r.code == 0, r.err
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["data"]["val_images"] == 6 and cfg["data"]["val_female"] == 2  # 25% of 16 M + 8 F, stratified
    assert "stratified" in cfg["data"]["split"]


def test_export_carries_preprocessing_and_labels(gender_model):
    from facecli.runtime import load_model

    run, onnx_path = gender_model
    m = load_model(onnx_path, "gender")
    cfg = json.loads((run / "config.json").read_text())
    assert m.meta["preprocessing"] == cfg["preprocessing"]
    assert m.meta["labels"] == ["male", "female"]
    assert m.meta["threshold"] == pytest.approx(cfg["threshold"])
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    p = m.run(x)  # dynamic batch axis
    assert p.shape == (5,) and np.all((p >= 0) & (p <= 1))


def test_classify_writes_rows_for_every_file_and_keeps_going(gender_model, tmp_path, cli):
    _, onnx_path = gender_model
    folder = tmp_path / "photos"
    write(folder / "a.jpg", gender_image(0, 1))
    write(folder / "sub" / "B.PNG", gender_image(1, 2))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, not scanned")
    out = tmp_path / "results.csv"
    r = cli("classify", folder, "--out", out, "--model", onnx_path)
    assert r.code == 0, r.err
    df = pd.read_csv(out, keep_default_na=False)
    assert set(df["path"]) == {"a.jpg", "sub/B.PNG", "broken.jpg", "empty.png"}
    assert {"path", "label", "p_female", "error"} <= set(df.columns)
    ok = df[df["error"] == ""]
    assert set(ok["label"]) <= {"male", "female"} and len(ok) == 2
    bad = df.set_index("path").loc[["broken.jpg", "empty.png"]]
    assert all(bad["error"] != "") and all(bad["label"] == "")
    assert "files that failed" in r.err
    assert not list(tmp_path.glob(".results.csv.*"))  # no temp file left behind


def test_evaluate_metrics_match_sklearn_on_its_own_predictions(gender_model, gender_data, tmp_path, cli):
    _, onnx_path = gender_model
    out = tmp_path / "eval"
    r = cli("evaluate", "gender", gender_data, "--out", out, "--model", onnx_path)
    assert r.code == 0, r.err
    pred = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    m = json.loads((out / "metrics.json").read_text())
    assert len(pred) == 12  # the Task A folder's val/ split is used
    y = (pred["true"] == "female").astype(int)
    p = pred["p_female"].astype(float)
    yhat = (p >= m["threshold"]).astype(int)
    assert list(yhat) == list((pred["predicted"] == "female").astype(int))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, yhat))
    assert m["precision"] == pytest.approx(skm.precision_score(y, yhat, zero_division=0))
    assert m["recall"] == pytest.approx(skm.recall_score(y, yhat))
    assert m["f1"] == pytest.approx(skm.f1_score(y, yhat))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, yhat))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-5)
    assert m["confusion_matrix"] == skm.confusion_matrix(y, yhat).tolist()
    for png in ("confusion_matrix.png", "roc.png", "precision_recall.png"):
        assert (out / png).stat().st_size > 1000


def test_classifier_learns_the_generated_classes(gender_model, tmp_path, cli):
    """Two epochs on clearly separable synthetic classes must beat chance on fresh images."""
    _, onnx_path = gender_model
    folder = tmp_path / "fresh"
    for i in range(10):
        write(folder / "male" / f"m{i}.jpg", gender_image(0, 5000 + i))
        write(folder / "female" / f"f{i}.jpg", gender_image(1, 6000 + i))
    r = cli("evaluate", "gender", folder, "--out", tmp_path / "ev", "--model", onnx_path, "--threshold", "0.5")
    assert r.code == 0, r.err
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["roc_auc"] > 0.8
