"""Recognition end to end through the CLI: train, export, gallery build/add/info, match, calibrate, evaluate."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from tests.conftest import make_identity_root


@pytest.fixture
def gallery(identity_model, identity_data, tmp_path, cli):
    _, onnx_path = identity_model
    g = tmp_path / "gallery"
    r = cli("gallery", "build", identity_data / "train", "--gallery", g, "--model", onnx_path)
    assert r.code == 0, r.err
    return g


def test_train_identity_run_folder(identity_model):
    run, _ = identity_model
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["task"] == "identity"
    assert cfg["model_kwargs"]["embedding_dim"] == 32
    assert cfg["data"]["train_identities"] == 10 and cfg["data"]["val_identities"] == 4
    assert "val_facecom_top1" in cfg["metrics"]
    assert (run / "model.safetensors").is_file() and (run / "curves.png").is_file()


def test_identity_split_is_disjoint_and_seeded(identity_data):
    from facecli.scan import scan_identity_folder
    from facecli.splits import split_by_identity

    items = scan_identity_folder(identity_data / "train")
    tr, va = split_by_identity(items, 0.3, seed=3)
    assert {items[i].identity for i in tr}.isdisjoint({items[i].identity for i in va})
    assert split_by_identity(items, 0.3, seed=3) == (tr, va)
    assert len(tr) + len(va) == len(items)


def test_gallery_build_per_image_default_templates_and_metadata(gallery, identity_model, identity_data, tmp_path,
                                                                cli):
    from facecli.gallery import Gallery
    from facecli.runtime import file_sha256

    g = Gallery.load(gallery)
    assert len(g.identities) == 10 and len(g.rows) == 14  # one vector per clean photo (2 + 2 + 3 + 7 x 1)
    assert g.meta["per_image"]
    r = cli("gallery", "build", identity_data / "train", "--gallery", tmp_path / "t", "--model", identity_model[1],
            "--templates")
    assert r.code == 0, r.err
    t = Gallery.load(tmp_path / "t")
    assert len(t.rows) == 10 and not t.meta.get("per_image")  # one template per identity
    photos = g.vectors[[i for i, r in enumerate(g.rows) if r == "person_02"]]
    mean = photos.mean(0) / np.linalg.norm(photos.mean(0))
    np.testing.assert_allclose(t.vectors[t.rows.index("person_02")], mean, atol=1e-5)
    assert np.allclose(np.linalg.norm(g.vectors, axis=1), 1, atol=1e-5)
    assert g.meta["image_counts"]["person_02"] == 3 and g.meta["image_counts"]["person_05"] == 1
    assert g.meta["model"]["sha256"] == file_sha256(identity_model[1])
    assert g.meta["model"]["preprocessing"]["size"] == 32


def test_gallery_info_and_add_replace(gallery, identity_model, tmp_path, cli):
    from facecli.gallery import Gallery

    before = Gallery.load(gallery)
    extra = make_identity_root(tmp_path / "extra", ["newcomer", "person_03"], {}, seed=9)
    r = cli("gallery", "add", extra, "--gallery", gallery, "--model", identity_model[1])
    assert r.code == 0, r.err
    assert "added 1 and replaced 1" in " ".join(r.err.split())
    after = Gallery.load(gallery)
    assert len(after.identities) == 11
    # untouched identities keep their vectors exactly (not re-embedded)
    for name in ("person_00", "person_07"):
        np.testing.assert_array_equal(before.vectors[before.rows.index(name)], after.vectors[after.rows.index(name)])
    assert not np.allclose(before.vectors[before.rows.index("person_03")], after.vectors[after.rows.index("person_03")])
    r = cli("gallery", "info", gallery)
    assert r.code == 0 and "11" in r.out  # the answer goes to stdout


def match(cli, probes, gallery, identity_model, out, *extra):
    """``facecli match`` with the test model and gallery."""
    return cli("match", probes, "--gallery", gallery, "--model", identity_model[1], "--out", out, *extra)


def test_match_closed_set_csv_and_report(gallery, identity_model, identity_data, tmp_path, cli):
    out = tmp_path / "m.csv"
    r = match(cli, identity_data / "train", gallery, identity_model, out, "--threshold", "0.3")
    assert r.code == 0, r.err
    df = pd.read_csv(out, keep_default_na=False)
    assert len(df) == 14 * 7  # distorted copies of 14 clean photos (2 + 2 + 3 + 7 x 1)
    assert {"path", "identity", "similarity", "accepted", "true_identity", "distortion", "error"} <= set(df.columns)
    assert set(df["distortion"]) == {"blurred", "foggy", "lowlight", "noisy", "rainy", "resized", "sunny"}
    sims = df["similarity"].astype(float)
    accepted = df["accepted"].astype(str) == "True"
    assert list(accepted) == list(sims >= 0.3)
    assert all(df.loc[~accepted, "identity"] == "unknown")
    rep = json.loads((tmp_path / "m_report" / "metrics.json").read_text())
    top1 = (df["nearest"] == df["true_identity"]).mean()
    assert rep["top1_accuracy"] == pytest.approx(top1)
    assert rep["macro_f1"] == pytest.approx(skm.f1_score(df["true_identity"], df["nearest"],
                                                         labels=sorted(set(df["true_identity"])), average="macro"))
    assert rep["probes_open_set"] == 0
    assert set(rep["per_distortion"]) == set(df["distortion"])
    assert not list((tmp_path / "m_report").glob("*.png"))  # plots are asked for with --plots


def test_match_plots_on_request(gallery, identity_model, identity_data, tmp_path, cli):
    r = match(cli, identity_data / "train", gallery, identity_model, tmp_path / "p.csv", "--plots")
    assert r.code == 0, r.err
    assert (tmp_path / "p_report" / "similarity_histogram.png").is_file()
    assert (tmp_path / "p_report" / "roc.png").is_file()
    r = match(cli, identity_data / "train", gallery, identity_model, tmp_path / "p.csv")
    assert r.code == 0, r.err
    assert not list((tmp_path / "p_report").glob("*.png"))  # no stale plots beside the new figures


def test_match_open_set_reports_fpir(gallery, identity_model, identity_data, tmp_path, cli):
    out = tmp_path / "open.csv"
    r = match(cli, identity_data / "val", gallery, identity_model, out, "--threshold", "0.8")
    assert r.code == 0, r.err
    df = pd.read_csv(out, keep_default_na=False)
    rep = json.loads((tmp_path / "open_report" / "metrics.json").read_text())
    assert rep["probes_in_gallery"] == 0 and rep["probes_open_set"] == len(df)
    accepted = df["accepted"].astype(str) == "True"
    assert rep["fpir"] == pytest.approx(accepted.mean())
    assert rep["open_set_accuracy"] == pytest.approx(1 - accepted.mean())
    assert "open-set test" in " ".join(r.err.split())


def test_match_plain_folder_has_no_ground_truth(gallery, identity_model, identity_data, tmp_path, cli):
    plain = tmp_path / "plain"
    plain.mkdir()
    for f in list((identity_data / "train" / "person_04" / "distortion").iterdir())[:3]:
        shutil.copy(f, plain / f.name)
    (plain / "bad.jpg").write_bytes(b"garbage")
    out = tmp_path / "p.csv"
    r = match(cli, plain, gallery, identity_model, out)
    assert r.code == 0, r.err
    df = pd.read_csv(out, keep_default_na=False)
    assert len(df) == 4 and "true_identity" not in df.columns
    assert df.set_index("path").loc["bad.jpg", "error"] != ""


def test_calibrate_stores_threshold_used_by_match(gallery, identity_model, identity_data, tmp_path, cli):
    from facecli.gallery import Gallery

    r = cli("calibrate", identity_data / "train", "--gallery", gallery, "--model", identity_model[1],
            "--objective", "far", "--far", "0.05")
    assert r.code == 0, r.err
    g = Gallery.load(gallery)
    assert "calibrated" in g.meta["threshold_source"]
    out = tmp_path / "after.csv"
    assert match(cli, identity_data / "train", gallery, identity_model, out).code == 0
    rep = json.loads((tmp_path / "after_report" / "metrics.json").read_text())
    assert rep["threshold"] == pytest.approx(g.threshold)
    assert rep["verification_far"] <= 0.05 + 1e-9


def test_evaluate_identity_runs_every_protocol(identity_model, identity_data, tmp_path, cli):
    out = tmp_path / "ev"
    r = cli("evaluate", "identity", identity_data / "train", "--model", identity_model[1], "--out", out)
    assert r.code == 0, r.err
    face = json.loads((out / "facecom_metrics.json").read_text())
    cross = json.loads((out / "cross_photo_metrics.json").read_text())
    assert face["probes"] == 14 * 7
    # cross-photo: photos sorted by name alternate gallery/probe; person_00 (2 photos) and person_01 (2) probe with
    # photo 1, person_02 (3) with photo 1 too (0 and 2 in the gallery) -> 3 photos x 7 distortions
    assert cross["probes"] == 3 * 7
    assert len(pd.read_csv(out / "cross_photo_matches.csv")) == 21
    clean = json.loads((out / "clean_cross_photo_metrics.json").read_text())
    assert clean["probes"] == 3  # the same three photos, clean


def test_gallery_refuses_probes_from_another_model(gallery, identity_model, identity_data, tmp_path, cli):
    import onnx

    proto = onnx.load(str(identity_model[1]))
    proto.doc_string = "a different model"
    other = tmp_path / "other.onnx"
    onnx.save(proto, str(other))
    r = cli("match", identity_data / "train", "--gallery", gallery, "--model", other, "--out", tmp_path / "x.csv")
    assert r.code == 2
    assert "another model" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.train
def test_triplet_training_with_identity_batches(identity_data, tmp_path, cli):
    from tests.conftest import TINY

    r = cli("train", "identity", identity_data / "train", "--out", tmp_path / "run", "--loss", "triplet",
            "--epochs", "1", "--batch-size", "8", "--embedding-dim", "16", "--val-fraction", "0.3", *TINY)
    assert r.code == 0, r.err
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["options"]["loss"] == "triplet"
    assert cfg["data"]["train_identities"] == 7 and cfg["data"]["val_identities"] == 3
    assert np.isfinite(pd.read_csv(tmp_path / "run" / "metrics.csv")["train_loss"]).all()


@pytest.mark.train
def test_identity_sampler_batches():
    from facecli.training.samplers import IdentitySampler

    labels = [0] * 5 + [1] * 2 + [2] * 9 + [3]
    batches = list(IdentitySampler(labels, identities_per_batch=2, images_per_identity=3, seed=0))
    assert batches
    for b in batches:
        ids = [labels[i] for i in b]
        assert len(b) == 6 and len(set(ids)) == 2 and all(ids.count(x) == 3 for x in set(ids))
