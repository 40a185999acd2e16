"""The lean model path: photo evidence where it can decide, int8 copies of models, and which file runs where."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

import facecli
import facecli.runtime as runtime
from facecli.gallery import PhotoSet, embeds_alike
from facecli.photo import (
    FIRE,
    PhotoEvidence,
    candidates_by_face,
    copy_evidence,
    face_leads,
    probe_thumbnail,
    thumbnail,
)
from facecli.pipeline import Crop, iter_prepared
from tests.conftest import distort, write
from tests.test_photo_evidence import PHOTOS, bgr


def _thumbs() -> np.ndarray:
    return np.stack([thumbnail(bgr(n)) for n in PHOTOS])


@pytest.mark.parametrize("kind", ["blurred", "foggy", "lowlight", "noisy", "rainy", "resized", "sunny"])
def test_copy_evidence_with_a_floor_names_the_same_photo_at_the_same_value(kind):
    cands = _thumbs()
    thumb, usable = probe_thumbnail(distort(bgr("astronaut"), kind, seed=3))
    full = copy_evidence(thumb, usable, cands)
    fast = copy_evidence(thumb, usable, cands, FIRE)
    fired = full >= FIRE
    assert ((fast >= FIRE) == fired).all()
    assert np.allclose(fast[fired], full[fired], atol=1e-5)
    assert (fast[~fired] < FIRE).all() and (fast[~fired] >= full[~fired] - 1e-5).all()  # an upper bound
    assert fired[0] or kind == "sunny"


def test_a_face_that_leads_finds_its_photo_among_its_identities_photos_without_the_photo_matcher():
    names = list(PHOTOS) + ["astronaut", "astronaut", "coffee"]
    imgs = [bgr(n) for n in PHOTOS] + [cv2.flip(bgr("astronaut"), 1), cv2.flip(bgr("astronaut"), 0),
                                        cv2.flip(bgr("coffee"), 1)]
    photos = PhotoSet(names, np.eye(len(names), 4, dtype=np.float32), np.stack([thumbnail(i) for i in imgs]), {})
    assert list(photos.rows_of(["astronaut"])) == [0, 5, 6]
    assert list(photos.rows_of(["coffee", "nobody"])) == [1, 7]
    probe = distort(bgr("astronaut"), "noisy", seed=1)
    thumb, usable = probe_thumbnail(probe)
    rows = candidates_by_face(photos, ["astronaut", "coffee"], thumb, usable, k=3)
    assert len(rows) == 3 and rows[0] == 0  # five candidates, the source first by coarse layout
    assert face_leads(0.9, "detected") and not face_leads(0.3, "detected") and not face_leads(0.99, "fallback")

    class NoMatcher:  # the photo matcher must not run for a probe whose face leads
        preprocessing = facecli.load_model(None, "identity", device="cpu").preprocessing

        def run(self, x):
            raise AssertionError("photo matcher ran")

    class Gallery:
        def search(self, q, k):
            return [["astronaut", "coffee", "chelsea"][:k]] * len(q), np.full((len(q), k), 0.9, np.float32)

    ev = PhotoEvidence(NoMatcher(), photos, lambda c: c, Gallery())
    crop = Crop(7, 0, (0, 0, 10, 10), "detected", np.zeros((2, 2, 3), np.uint8), extra=ev.inputs(probe))
    votes = ev.votes([crop], np.zeros((1, 4), np.float32))
    assert votes[7].identity == "astronaut" and votes[7].row == 0 and votes[7].evidence >= FIRE


def test_a_float_model_and_its_int8_copy_embed_alike_both_ways():
    float_sha, int8_sha = "f" * 64, "1" * 64
    assert embeds_alike({"sha256": float_sha}, int8_sha, [float_sha])  # old gallery, int8 model
    assert embeds_alike({"sha256": int8_sha, "embeds_like": [float_sha]}, float_sha, [])  # int8 gallery, GPU
    assert not embeds_alike({"sha256": int8_sha, "embeds_like": [float_sha]}, "2" * 64, [])


def test_the_cpu_runs_the_shipped_int8_copy_and_falls_back_to_the_float_file(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "models_dir", lambda: tmp_path)
    (tmp_path / "identity.onnx").write_bytes(b"x")
    assert runtime.default_model_path("identity", "cpu") == tmp_path / "identity.onnx"
    (tmp_path / "identity-int8.onnx").write_bytes(b"x")
    assert runtime.default_model_path("identity", "cpu") == tmp_path / "identity-int8.onnx"
    assert runtime.shipped_model_path("identity.onnx", "auto").name == "identity-int8.onnx"  # no GPU here


def test_shipped_int8_models_record_their_source_and_agree_with_it():
    for task, name in (("identity", "identity.onnx"), ("gender", "gender.onnx"), ("identity", "identity_facecom.onnx")):
        src = runtime.models_dir() / name
        q = runtime.load_model(runtime.shipped_model_path(name, "cpu"), task, device="cpu")
        assert q.path.name.endswith("-int8.onnx") and q.card.quantized["from_sha256"] == runtime.file_sha256(src)
        f = runtime.load_model(src, task, device="cpu")
        assert q.card.preprocessing == f.card.preprocessing and q.card.threshold == f.card.threshold
        images = [bgr("astronaut"), distort(bgr("astronaut"), "blurred"), distort(bgr("astronaut"), "noisy")]
        x = np.stack([c.tensor for crops, _, _ in iter_prepared(images, f.preprocessing, workers=1) for c in crops])
        a, b = f.run(x), q.run(x)
        if task == "identity":
            assert runtime.file_sha256(src) in q.card.embeds_like
            assert ((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min() > 0.99
        else:
            assert np.abs(a - b).max() < 0.05


def test_export_int8_quantises_a_model_and_galleries_accept_either(identity_model, identity_data, tmp_path, cli):
    _, onnx_path = identity_model
    out = tmp_path / "q.onnx"
    r = cli("export", "int8", onnx_path, "--calibration", identity_data, "--out", out, "--limit", "24",
            "--min-cosine", "0.9")
    assert r.code == 0, r.err
    assert "wrote int8 model" in r.out + r.err and "mean cosine" in r.out + r.err
    q = facecli.load_model(out, "identity", device="cpu")
    f = facecli.load_model(onnx_path, "identity", device="cpu")
    assert q.card.quantized["from_sha256"] == f.sha256 and f.sha256 in q.card.embeds_like
    assert json.loads(q.session.get_modelmeta().custom_metadata_map["facecli"])["quantized"]
    g = tmp_path / "g"
    facecli.build_gallery(identity_data / "train", f, out=g, photo=False)
    probe = sorted((identity_data / "train").rglob("*_blurred.jpg"))[0]
    assert len(facecli.match_probes([probe], g, q).table) == 1  # a float gallery, matched with the int8 copy
    r = cli("export", "int8", out, "--calibration", identity_data, "--out", tmp_path / "qq.onnx")
    assert r.code != 0 and "already quantised" in r.err
    r = cli("export", "int8", onnx_path, "--calibration", identity_data, "--out", tmp_path / "x.onnx",
            "--min-cosine", "1.0", "--limit", "8")
    assert r.code != 0 and "strays" in r.err and not (tmp_path / "x.onnx").exists()


def test_ray_actors_take_one_cpu_each_and_share_the_gpus_by_cores():
    from facecli.engines import actor_resources
    from facecli.errors import FacecliError

    assert actor_resources({"CPU": 2.0}, "auto", 10) == (2, {"num_cpus": 1})
    assert actor_resources({"CPU": 16.0, "GPU": 1.0}, "cpu", 3) == (3, {"num_cpus": 1})
    assert actor_resources({"CPU": 16.0, "GPU": 1.0}, "cuda", 40) == (16, {"num_cpus": 1, "num_gpus": 1 / 16})
    assert actor_resources({"CPU": 32.0, "GPU": 4.0}, "auto", 40)[1]["num_gpus"] == 1 / 8
    with pytest.raises(FacecliError, match="no GPU"):
        actor_resources({"CPU": 8.0}, "cuda", 4)


def test_read_results_gives_the_same_values_whatever_the_format(tmp_path, gallery_for_formats):
    src = tmp_path / "in"
    write(src / "a.jpg", bgr("astronaut"))
    write(src / "b.jpg", distort(bgr("astronaut"), "blurred"))
    (src / "broken.jpg").write_bytes(b"not an image")
    tables = {}
    for ext in (".csv", ".jsonl", ".parquet"):
        facecli.classify_images(src, out=tmp_path / f"c{ext}")
        facecli.match_probes(src, gallery_for_formats, out=tmp_path / f"m{ext}")
        tables[ext] = (facecli.read_results(tmp_path / f"c{ext}"), facecli.read_results(tmp_path / f"m{ext}"))
    for k in (0, 1):
        csv, jsonl, parquet = (tables[e][k] for e in (".csv", ".jsonl", ".parquet"))
        for other in (jsonl, parquet):
            assert list(other.columns) == list(csv.columns)
            for col in csv.columns:
                assert csv[col].astype(object).where(csv[col].notna(), None).tolist() == \
                    other[col].astype(object).where(other[col].notna(), None).tolist(), col
    c, m = tables[".csv"]
    assert isinstance(c.loc[0, "box"], list) and len(c.loc[0, "box"]) == 4 and isinstance(c.loc[0, "box"][0], int)
    assert c["p_female"].dtype == "Float64" and c["face"].dtype == "Int64"
    assert isinstance(m.loc[0, "top_k"], list) and m["accepted"].dtype == "boolean"
    broken = c[c["path"] == "broken.jpg"].iloc[0]
    assert broken["box"] is None and pd.isna(broken["p_female"]) and broken["error"]


@pytest.fixture
def gallery_for_formats(tmp_path):
    root = tmp_path / "people"
    for name in ("astronaut", "coffee"):
        write(root / name / f"{name}.jpg", bgr(name))
    return facecli.build_gallery(root, out=tmp_path / "g").gallery


def test_the_frame_head_is_a_facecli_model_that_reads_the_photo_matchers_embedding(tmp_path):
    from facecli.errors import FacecliError
    from facecli.frame_gender import HEAD_FILE, FrameGender
    from facecli.resolve import frame_gender

    head = runtime.load_model(runtime.models_dir() / HEAD_FILE, "gender", device="cpu")
    matcher = runtime.models_dir() / "identity_facecom.onnx"
    assert head.card.reads == runtime.file_sha256(matcher) and head.card.task == "gender"
    fg = frame_gender(facecli.RunOptions(device="cpu", threads=1))
    assert fg.head.card.reads == head.card.reads and fg.embedder.path.name == "identity_facecom-int8.onnx"
    p = fg.p_female([fg.crop(bgr("astronaut"))])
    assert p.shape == (1,) and 0.0 <= float(p[0]) <= 1.0
    gender = runtime.load_model(None, "gender", device="cpu")  # a gender model that reads no embedder
    with pytest.raises(FacecliError, match="reads no embedder"):
        FrameGender(gender.path, fg.embedder)
    other = runtime.load_model(runtime.models_dir() / "identity.onnx", "identity", device="cpu")
    with pytest.raises(FacecliError, match="another embedder"):
        FrameGender(head.path, other)
