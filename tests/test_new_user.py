"""Issue 27's new-user findings: what a user following the README tripped on, now fixed."""

from __future__ import annotations

import numpy as np
import pytest

import facecli
from facecli.errors import FacecliError
from tests.conftest import write


@pytest.fixture(scope="module")
def ids(tmp_path_factory):
    from skimage import data

    root = tmp_path_factory.mktemp("ids")
    write(root / "astronaut" / "a.jpg", data.astronaut()[:, :, ::-1])
    return root


def test_gallery_build_over_an_existing_gallery_is_refused_unless_replaced(cli, ids, tmp_path):
    g = tmp_path / "g"
    assert cli("gallery", "build", str(ids), "-g", str(g)).code == 0
    before = (g / "gallery.json").read_bytes()
    r = cli("gallery", "build", str(ids), "-g", str(g))
    assert r.code == 2 and "gallery add" in r.err and "--replace" in r.err and "1 identity:" in r.err
    assert (g / "gallery.json").read_bytes() == before
    assert cli("gallery", "build", str(ids), "-g", str(g), "--replace").code == 0
    with pytest.raises(FacecliError, match="already holds"):
        facecli.build_gallery(ids, out=g)


def test_gallery_info_answers_on_stdout_and_takes_g_like_every_command(cli, ids, tmp_path):
    g = tmp_path / "g"
    assert cli("gallery", "build", str(ids), "-g", str(g)).code == 0
    for args in (["gallery", "info", str(g)], ["gallery", "info", "-g", str(g)]):
        r = cli(*args)
        assert r.code == 0 and "identities" in r.out and "astronaut" not in r.err


def test_help_and_repr_say_what_they_mean(cli, ids):
    r = cli("classify", "--help")
    assert "facecli[ray]" in " ".join(r.out.split())
    g = facecli.Gallery.create(["a"] * 3, np.eye(3, 8, dtype=np.float32), {"a": 3}, {"sha256": "x"}, 0.5)
    assert repr(g).startswith("Gallery(1 identities, 3 vectors") and len(repr(g)) < 200


def test_a_streamed_match_lists_its_probes_once(ids, tmp_path):
    from skimage import data

    g = facecli.build_gallery(ids, out=tmp_path / "g").gallery
    probes = tmp_path / "p"
    for i in range(3):
        write(probes / f"{i}.jpg", data.astronaut()[:, :, ::-1][i * 10:])
    run = facecli.match_probes(probes, g, out=tmp_path / "m.csv", layout="plain")
    names = [name for name, _ in run.summary_rows()]
    assert names.count("probes") == 1 and dict(run.summary_rows())["probes"] == 3


def test_a_negative_identity_threshold_is_refused_and_refusals_draw_no_bar(cli, ids, tmp_path):
    g = tmp_path / "g"
    assert cli("gallery", "build", str(ids), "-g", str(g)).code == 0
    r = cli("match", str(ids), "-g", str(g), "--threshold", "-0.5", "--out", str(tmp_path / "m.csv"))
    assert r.code == 2 and "must lie in [0, 1]" in r.err and not (tmp_path / "m.csv").exists()
    r = cli("classify", str(ids), "--out", str(tmp_path / "c.csv"), "--resume")
    assert r.code == 2 and "nothing to resume" in r.err and "━" not in r.err
    help_text = " ".join(cli("verify", "--help").out.split())
    assert "gallery's calibrated" not in help_text and "cosine in [-1, 1]" not in help_text


def test_the_ray_engine_prints_facecli_lines_only(tmp_path):
    """Ray's token notice, its deprecation warnings, Ray Data's execution notes and the actor error line stay in
    Ray's session logs; the output equals the local engine's."""
    import os
    import subprocess
    import sys

    pytest.importorskip("ray")
    from tests.conftest import gender_image

    src = tmp_path / "in"
    for i in range(6):
        write(src / f"p{i}.jpg", gender_image(i % 2, i))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.csv"
        r = subprocess.run([sys.executable, "-m", "facecli", "classify", str(src), "--out", str(out), "--engine",
                            engine, "--detect", "none"], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        outs[engine] = (out.read_bytes(), r.stderr)
    assert outs["local"][0] == outs["ray"][0]
    err = outs["ray"][1]
    for noise in ("Token authentication", "deprecated", "core_worker", "streaming_executor", "Progress bars"):
        assert noise not in err, err


def test_evaluate_takes_photo_and_frame_switches_like_match_and_classify(cli, tmp_path):
    import pandas as pd

    from tests.test_photo_evidence import PHOTOS, bgr, glare

    root = tmp_path / "ids"
    for name in PHOTOS:
        write(root / name / f"{name}.jpg", bgr(name))
    write(root / "astronaut" / "distortion" / "astronaut_sunny.jpg", glare(bgr("astronaut")))
    got = {}
    for flag in ("--photo", "--no-photo"):
        out = tmp_path / flag
        r = cli("evaluate", "identity", root, "--out", out, flag)
        assert r.code == 0, r.err
        got[flag] = pd.read_csv(out / "facecom_matches.csv", keep_default_na=False).iloc[0]["evidence"]
    assert got["--photo"] in ("photo", "both") and got["--no-photo"] == "face"
    r = cli("evaluate", "gender", tmp_path / "nope", "--no-frame")
    assert r.code == 2 and "--no-frame" not in r.err  # the switch exists: only the missing folder is refused
