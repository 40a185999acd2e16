"""Issue 19: any input (files, several paths, standard input), outputs by extension, streamed and resumable
runs, verify, and the Ray engine giving what the local engine gives."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import facecli
from facecli.errors import FacecliError
from tests.conftest import gender_image, make_identity_root, pattern_image, signal_after_parts, write

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def photos(folder: Path, n: int, seed: int = 0) -> Path:
    for i in range(n):
        write(folder / f"p{i:03d}.jpg", gender_image(i % 2, seed + i))
    return folder


def rows(path: Path) -> pd.DataFrame:
    return facecli.read_results(path)


# ---------------------------------------------------------------- inputs


def test_classify_takes_a_file_several_paths_and_stdin(cli, tmp_path, gender_model, monkeypatch):
    _, onnx = gender_model
    a, b = photos(tmp_path / "a", 3), photos(tmp_path / "b", 2, seed=10)
    one = tmp_path / "one.csv"
    assert cli("classify", a / "p001.jpg", "--out", one, "--model", onnx, "--detect", "none").code == 0
    assert list(rows(one)["path"]) == [(a / "p001.jpg").as_posix()]
    many = tmp_path / "many.csv"
    r = cli("classify", a, b / "p000.jpg", b, "--out", many, "--model", onnx, "--detect", "none")
    assert r.code == 0, r.err
    names = list(rows(many)["path"])
    assert names == [*(f"{a.as_posix()}/p{i:03d}.jpg" for i in range(3)), (b / "p000.jpg").as_posix(),
                     *(f"{b.as_posix()}/p{i:03d}.jpg" for i in range(2))]
    listed = "\n".join(str(p) for p in sorted(a.glob("*.jpg"))) + "\n\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(listed))
    piped = tmp_path / "piped.csv"
    assert cli("classify", "-", "--out", piped, "--model", onnx, "--detect", "none").code == 0
    got = rows(piped)
    assert list(got["path"]) == [str(p) for p in sorted(a.glob("*.jpg"))]
    single = rows(tmp_path / "many.csv").iloc[:3]  # the same images give the same labels, whatever the source
    assert list(got["label"]) == list(single["label"]) and list(got["p_female"]) == list(single["p_female"])


def test_match_reads_a_folder_of_folders_of_plain_photos(cli, tmp_path, identity_model, identity_data, monkeypatch):
    _, onnx = identity_model
    g = tmp_path / "g"
    assert cli("gallery", "build", identity_data / "train", "-g", g, "--model", onnx, "--no-photo").code == 0
    byday = tmp_path / "byday"
    for day in ("mon", "tue"):
        for i in range(2):
            write(byday / day / f"{i}.jpg", pattern_image(1000 + i))  # folders of photos, no distortion/
    out = tmp_path / "m.csv"
    r = cli("match", byday, "-g", g, "--out", out)
    assert r.code == 0, r.err
    got = rows(out)
    assert list(got["path"]) == ["mon/0.jpg", "mon/1.jpg", "tue/0.jpg", "tue/1.jpg"]
    assert "true_identity" not in got and "no ground truth" in r.err
    # an identity-layout folder is still read as one, and scored
    scored = tmp_path / "s.csv"
    r = cli("match", identity_data / "val", "-g", g, "--out", scored)
    assert r.code == 0 and "true_identity" in rows(scored)
    # files and several folders work too
    r = cli("match", byday / "mon", byday / "tue" / "1.jpg", "-g", g, "--out", out)
    assert r.code == 0 and len(rows(out)) == 3
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{byday / 'tue' / '0.jpg'}\n"))
    r = cli("match", "-", "-g", g, "--out", out)
    assert r.code == 0 and list(rows(out)["path"]) == [str(byday / "tue" / "0.jpg")]


def test_nothing_found_names_layout_and_probes(cli, tmp_path, identity_model):
    _, onnx = identity_model
    root = tmp_path / "ids"
    for ident in ("ann", "bob"):
        write(root / ident / "x.jpg", pattern_image(3))
    g = tmp_path / "g"
    assert cli("gallery", "build", root, "-g", g, "--model", onnx, "--no-photo").code == 0
    r = cli("match", root, "-g", g, "--layout", "identity", "--out", tmp_path / "m.csv")
    assert r.code == 2 and "--layout" in r.err and "--probes" in r.err


# ---------------------------------------------------------------- outputs


def test_csv_parquet_and_jsonl_hold_the_same_rows(cli, tmp_path, gender_model):
    _, onnx = gender_model
    src = photos(tmp_path / "p", 4)
    (src / "broken.jpg").write_bytes(b"not an image")
    tables = {}
    for ext in ("csv", "parquet", "jsonl"):
        out = tmp_path / f"r.{ext}"
        assert cli("classify", src, "--out", out, "--model", onnx).code == 0
        tables[ext] = rows(out)
    csv, pq, jl = tables["csv"], tables["parquet"], tables["jsonl"]
    assert list(csv.columns) == list(pq.columns) == list(jl.columns)
    assert list(csv["path"]) == list(pq["path"]) == list(jl["path"])
    assert list(csv["label"]) == list(pq["label"]) == list(jl["label"])
    p_csv = pd.to_numeric(csv["p_female"]).to_numpy()
    assert np.allclose(p_csv, pq["p_female"].to_numpy(dtype=float), equal_nan=True)
    assert np.allclose(p_csv, jl["p_female"].to_numpy(dtype=float), equal_nan=True)
    # lists are real lists in Parquet and JSON lines, text in CSV; read_results gives lists for all three
    ok = [b is not None for b in csv["box"]]
    assert [b is not None for b in pq["box"]] == [b is not None for b in jl["box"]] == ok
    assert all(b == q == j and isinstance(b[0], int)
               for b, q, j in zip(csv["box"][ok], pq["box"][ok], jl["box"][ok], strict=True))
    assert list(csv["error"] != "") == list(pq["error"] != "") == list(jl["error"] != "") and (csv["error"] != "").sum() == 1


def test_an_unknown_output_extension_is_refused_before_any_work(cli, tmp_path, gender_model):
    src = photos(tmp_path / "p", 2)
    r = cli("classify", src, "--out", tmp_path / "x.txt", "--model", gender_model[1])
    assert r.code == 2 and "unknown output format '.txt'" in r.err and "model:" not in r.err
    assert not (tmp_path / "x.txt").exists()


# ---------------------------------------------------------------- streamed, resumable runs

RUN = """
import sys
from facecli.cli import main
sys.argv = ["facecli", *sys.argv[1:]]
main()
"""


def test_a_killed_classify_resumes_into_exactly_the_uninterrupted_output(tmp_path, gender_model):
    _, onnx = gender_model
    src = tmp_path / "many"
    src.mkdir()
    seeds = [write(tmp_path / f"s{i}.jpg", gender_image(i % 2, i)) for i in range(6)]
    for i in range(900):  # hard links of a few images
        os.link(seeds[i % 6], src / f"{i:05d}.jpg")
    args = ["classify", str(src), "--model", str(onnx), "--detect", "none", "--part-size", "50", "--batch-size", "25"]
    whole = tmp_path / "whole.csv"
    assert subprocess.run([sys.executable, "-c", RUN, *args, "--out", str(whole)], env=ENV,
                          capture_output=True).returncode == 0
    out = tmp_path / "killed.csv"
    partial = tmp_path / "killed.csv.partial"
    signal_after_parts([*args, "--out", str(out)], partial, 3, signal.SIGKILL, ENV).wait()
    assert not out.exists() and len(list(partial.glob("part-*.json"))) >= 3
    done_before = 50 * len(list(partial.glob("part-*.json")))
    r = subprocess.run([sys.executable, "-c", RUN, *args, "--out", str(out), "--resume"], env=ENV,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == whole.read_bytes()  # exactly one row per file, the same values
    assert len(rows(out)) == 900 and not partial.exists()
    skipped = [ln for ln in r.stderr.splitlines() if "skipped (done by the interrupted run)" in ln]
    assert skipped and skipped[0].split()[-2] == str(done_before)  # the resumed run did only the rest


def test_resume_refuses_what_it_cannot_continue(cli, tmp_path, gender_model):
    _, onnx = gender_model
    src = photos(tmp_path / "p", 3)
    out = tmp_path / "r.csv"
    r = cli("classify", src, "--out", out, "--model", onnx, "--resume")
    assert r.code == 2 and "nothing to resume" in r.err
    partial = tmp_path / "r.csv.partial"
    partial.mkdir()
    (partial / "run.json").write_text(json.dumps({"facecli_partial": 1, "command": "classify", "threshold": 0.1}))
    r = cli("classify", src, "--out", out, "--model", onnx)
    assert r.code == 2 and "--resume" in r.err
    r = cli("classify", src, "--out", out, "--model", onnx, "--resume")
    assert r.code == 2 and "differs from this one" in r.err


def test_streamed_and_in_memory_runs_agree(tmp_path, gender_model):
    _, onnx = gender_model
    src = photos(tmp_path / "p", 7)
    mem = facecli.classify_images(src, onnx)
    streamed = facecli.classify_images(src, onnx, out=tmp_path / "r.csv", part_size=3)
    assert streamed.table is None and streamed.streamed.images == 7
    assert dict(streamed.summary_rows()) == dict(mem.summary_rows())
    back = rows(tmp_path / "r.csv")
    assert list(back["path"]) == list(mem.table["path"]) and list(back["label"]) == list(mem.table["label"])


# ---------------------------------------------------------------- verify


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from skimage import data

    d = tmp_path_factory.mktemp("verify")
    astro = data.astronaut()[:, :, ::-1]
    other = cv2.resize(cv2.flip(astro, 1)[20:480, 10:470], (300, 300))  # another photo: mirrored, cropped, smaller
    other = cv2.convertScaleAbs(other, alpha=0.8, beta=20)
    cam = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    return write(d / "astro.jpg", astro), write(d / "astro2.jpg", other), write(d / "camera.jpg", cam)


def test_verify_exit_status_is_like_cmp(cli, pair):
    astro, astro2, cam = pair
    r = cli("verify", astro, astro2)
    assert r.code == 0 and "the same person" in r.err
    r = cli("verify", astro, cam, "--json")
    assert r.code == 1
    v = json.loads(r.out)
    assert v["same"] is False and 0 <= v["similarity"] < v["threshold"] and v["evidence"] in ("face", "photo", "both")
    r = cli("verify", astro, astro2.with_name("missing.jpg"))
    assert r.code == 2 and r.err.strip().splitlines()[-1].startswith("error: ")


def test_verify_in_python(pair):
    astro, astro2, cam = pair
    v = facecli.verify(astro, astro2)
    assert v.same and v.similarity >= v.threshold and v.face_status_a == "detected"
    assert not facecli.verify(facecli.load_image(astro), cam).same
    with pytest.raises(FacecliError):
        facecli.verify(astro, b"raw")


# ---------------------------------------------------------------- the Ray engine


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_engine_gives_what_the_local_engine_gives(tmp_path, local_ray, gender_model, identity_model,
                                                      identity_data):
    _, g_onnx = gender_model
    src = photos(tmp_path / "p", 9)
    (src / "broken.jpg").write_bytes(b"x")
    loc = facecli.classify_images(src, g_onnx, out=tmp_path / "loc.parquet", part_size=4)
    ray = facecli.classify_images(src, g_onnx, out=tmp_path / "ray.parquet", part_size=4, engine="ray")
    a, b = rows(tmp_path / "loc.parquet"), rows(tmp_path / "ray.parquet")
    assert list(a["path"]) == list(b["path"]) and list(a["label"]) == list(b["label"])
    assert np.allclose(a["p_female"].to_numpy(float), b["p_female"].to_numpy(float), atol=1e-5, equal_nan=True)
    assert dict(loc.summary_rows()) == dict(ray.summary_rows())

    _, i_onnx = identity_model
    built = facecli.build_gallery(identity_data / "train", i_onnx, out=tmp_path / "g")
    probes = make_identity_root(tmp_path / "probes", ["x", "y"], {}, seed=1)  # plain photos too: no ground truth
    kw = {"layout": "plain", "part_size": 5}
    facecli.match_probes(probes, built.gallery, out=tmp_path / "ml.csv", **kw)
    facecli.match_probes(probes, built.gallery, out=tmp_path / "mr.csv", engine="ray", **kw)
    a, b = rows(tmp_path / "ml.csv"), rows(tmp_path / "mr.csv")
    assert list(a["path"]) == list(b["path"]) and list(a["identity"]) == list(b["identity"])
    assert np.allclose(pd.to_numeric(a["similarity"]), pd.to_numeric(b["similarity"]), atol=1e-5)


# ---------------------------------------------------------------- what a hostile review found


def test_a_part_of_only_unreadable_files_joins_in_every_format(cli, tmp_path, gender_model):
    _, onnx = gender_model
    src = photos(tmp_path / "p", 2)
    (src / "z1.jpg").write_bytes(b"x")
    (src / "z2.jpg").write_bytes(b"")
    for ext in ("parquet", "jsonl", "csv"):
        out = tmp_path / f"r.{ext}"
        r = cli("classify", src, "--out", out, "--model", onnx, "--part-size", "2")
        assert r.code == 0, r.err
        got = rows(out)
        assert len(got) == 4 and (got["error"] != "").sum() == 2
    pq = rows(tmp_path / "r.parquet")
    assert str(pq["face"].dtype) in ("Int64", "int64") and pq["face"].isna().sum() == 2


def test_resume_refuses_changed_inputs_and_redoes_a_damaged_part(tmp_path, gender_model):
    _, onnx = gender_model
    src = photos(tmp_path / "p", 12)
    out = tmp_path / "r.csv"
    whole = facecli.classify_images(src, onnx, out=tmp_path / "whole.csv", part_size=4, detect="none")
    assert whole.streamed.images == 12
    partial = tmp_path / "r.csv.partial"
    # a run interrupted (Ctrl-C) right after its second part
    import facecli.batch as batch

    calls = {"n": 0}
    real = batch.write_json

    def stop_after_two(path, obj):
        real(path, obj)
        if path.name.startswith("part-"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt

    batch.write_json = stop_after_two
    try:
        with pytest.raises(KeyboardInterrupt):
            facecli.classify_images(src, onnx, out=out, part_size=4, detect="none")
    finally:
        batch.write_json = real
    assert len(list(partial.glob("part-*.json"))) == 2
    # a part damaged on disk is done again; the output is still exactly the uninterrupted one
    first = partial / "part-00000000.csv"
    first.write_text(first.read_text().splitlines()[0] + "\n")
    facecli.classify_images(src, onnx, out=out, part_size=4, detect="none", resume=True)
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()
    # inputs that changed under a finished part are refused
    calls["n"] = 0
    batch.write_json = stop_after_two
    try:
        with pytest.raises(KeyboardInterrupt):
            facecli.classify_images(src, onnx, out=tmp_path / "s.csv", part_size=4, detect="none")
    finally:
        batch.write_json = real
    (src / "p001.jpg").rename(src / "p001b.jpg")
    with pytest.raises(FacecliError, match="inputs changed"):
        facecli.classify_images(src, onnx, out=tmp_path / "s.csv", part_size=4, detect="none", resume=True)


def test_one_run_at_a_time_writes_an_output(tmp_path, gender_model):
    import fcntl

    _, onnx = gender_model
    src = photos(tmp_path / "p", 3)
    partial = tmp_path / "r.csv.partial"
    partial.mkdir()
    (partial / "run.json").write_text("{}")
    fd = os.open(partial / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a live run holds it
    try:
        for resume in (False, True):
            with pytest.raises(FacecliError, match="another facecli run is writing r.csv now"):
                facecli.classify_images(src, onnx, out=tmp_path / "r.csv", resume=resume)
    finally:
        os.close(fd)


def test_names_that_are_not_utf8_get_rows(cli, tmp_path, gender_model):
    _, onnx = gender_model
    src = photos(tmp_path / "p", 1)
    bad = os.fsdecode(b"bad\xff.jpg")
    shutil.copy(src / "p000.jpg", src / bad)
    for ext in ("csv", "parquet", "jsonl"):
        out = tmp_path / f"r.{ext}"
        assert cli("classify", src, "--out", out, "--model", onnx).code == 0
        assert "bad\\xff.jpg" in list(rows(out)["path"])


def test_negative_box_numbers_are_not_taken_for_formulas():
    from facecli.outputs import neutralise_formulas

    t = pd.DataFrame({"path": ["-a.jpg"], "box": ["-25 101 184 311"], "landmarks": ["-2.5 3.0"]})
    got = neutralise_formulas(t)
    assert got["path"][0] == "'-a.jpg" and got["box"][0] == "-25 101 184 311" and got["landmarks"][0] == "-2.5 3.0"


def test_images_without_a_face_are_not_matched_on_face_evidence(pair, tmp_path):
    from facecli.protocols import Evidence

    ev = Evidence(None, None, [False, False], [False, True])
    s = ev.face_scores(np.array([[0.9, 0.2], [0.99, 0.5]], np.float32))
    assert s[0, 0] == pytest.approx(0.9) and s[1].max() < 0.01 and s[1, 0] > s[1, 1]  # ranking kept
    blank = write(tmp_path / "blank.jpg", np.full((200, 200, 3), 120, np.uint8))
    with pytest.raises(FacecliError, match="no face found"):
        facecli.verify(blank, pair[0])
    assert not facecli.verify(pair[0], blank).same


def test_an_empty_input_path_is_refused(cli, tmp_path):
    r = cli("classify", "", "--out", tmp_path / "r.csv")
    assert r.code == 2 and "empty path" in r.err
