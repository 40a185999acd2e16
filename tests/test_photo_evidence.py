"""Photo evidence beside face evidence, the score scale, and galleries built before either."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data

import facecli
from facecli.card import ScoreScale
from facecli.gallery import PhotoSet
from facecli.photo import FIRE, PhotoRanking, PhotoVote, copy_evidence, probe_thumbnail, thumbnail, vote
from facecli.protocols import Evidence, fuse, in_memory_gallery, rank
from tests.conftest import write

PHOTOS = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea, "rocket": data.rocket,
          "hubble": data.hubble_deep_field}


def bgr(name: str) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(PHOTOS[name](), cv2.COLOR_RGB2BGR), (256, 256), interpolation=cv2.INTER_AREA)


def glare(img: np.ndarray) -> np.ndarray:
    """A saturated white disc over the centre, like FACECOM's sunny copies."""
    out = img.copy()
    cv2.circle(out, (128, 118), 70, (255, 255, 255), -1)
    return cv2.GaussianBlur(out, (0, 0), 2)


@pytest.fixture(scope="module")
def gallery_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("people")
    for name in PHOTOS:
        write(root / name / f"{name}_0001.png", bgr(name))
    return root


def test_copy_evidence_fires_for_degraded_copies_and_not_for_other_photos():
    cands = np.stack([thumbnail(bgr(n)) for n in PHOTOS])
    for make in (glare, lambda x: cv2.GaussianBlur(x, (0, 0), 2.5), lambda x: cv2.convertScaleAbs(x, alpha=0.4)):
        thumb, usable = probe_thumbnail(make(bgr("astronaut")))
        ev = copy_evidence(thumb, usable, cands)
        assert ev[0] >= FIRE and (ev[1:] < FIRE).all(), ev
    # another photo of the same scene (shifted and rescaled) is not a copy
    shifted = cv2.warpAffine(bgr("astronaut"), np.float32([[1.15, 0, -30], [0, 1.15, -10]]), (256, 256))
    thumb, usable = probe_thumbnail(shifted)
    assert copy_evidence(thumb, usable, cands[:1])[0] < FIRE


def test_fuse_lets_photo_evidence_decide_and_says_so():
    names, sims = ["bob", "ann"], np.array([0.6, 0.3], np.float32)
    n, s, how = fuse(list(names), sims.copy(), PhotoVote(0, "ann", 0.9), threshold=0.8)
    assert n[0] == "ann" and s[0] >= 0.99 and how == "photo"
    n, s, how = fuse(["ann", "bob"], np.array([0.95, 0.2], np.float32), PhotoVote(0, "ann", 0.9), threshold=0.8)
    assert n[0] == "ann" and how == "both"
    n, s, how = fuse(list(names), sims.copy(), None, threshold=0.8)
    assert n == names and how == "face"


def test_score_scale_is_readable_and_monotone():
    s = ScoreScale(0.96, 7.5)
    assert s(0.96) == pytest.approx(0.5)
    xs = np.linspace(0.5, 1.0, 101)
    assert np.all(np.diff(s(xs)) >= 0) and s(1.0) == pytest.approx(1.0)
    assert s.cosine(0.8) == pytest.approx(float(xs[np.argmin(np.abs(s(xs) - 0.8))]), abs=0.005)
    with pytest.raises(ValueError):
        ScoreScale(0.96, -1.0)


def test_match_recognises_a_glared_copy_by_photo_evidence(gallery_root, tmp_path, cli):
    g = tmp_path / "g"
    r = cli("gallery", "build", gallery_root, "-g", g)
    assert r.code == 0, r.err
    info = cli("gallery", "info", g)
    assert "face and photo" in info.out + info.err
    probes = tmp_path / "probes"
    write(probes / "sunny.png", glare(bgr("astronaut")))
    write(probes / "stranger.png", cv2.cvtColor(cv2.resize(data.camera(), (256, 256)), cv2.COLOR_GRAY2BGR))
    r = cli("match", probes, "-g", g, "--layout", "plain", "--out", tmp_path / "m.csv")
    assert r.code == 0, r.err
    rows = pd.read_csv(tmp_path / "m.csv", keep_default_na=False).set_index("path")
    assert rows.loc["sunny.png", "identity"] == "astronaut"
    assert rows.loc["sunny.png", "evidence"] in ("photo", "both")
    assert rows.loc["stranger.png", "evidence"] == "face"
    assert rows.loc["stranger.png", "identity"] == "unknown"
    assert rows["similarity"].min() >= 0.0 and rows["similarity"].max() <= 1.0
    # a threshold that lets most strangers in gets a one-line warning
    r = cli("match", probes, "-g", g, "--layout", "plain", "--out", tmp_path / "m2.csv", "--threshold", "0.0001")
    assert r.code == 0 and "of strangers" in r.out + r.err


def test_a_gallery_built_before_photo_evidence_and_score_scales_still_matches(gallery_root, tmp_path, cli):
    g = tmp_path / "old"
    assert cli("gallery", "build", gallery_root, "-g", g, "--no-photo").code == 0
    meta = json.loads((g / "gallery.json").read_text())
    assert "photo" not in meta and not (g / "thumbnails.npy").exists()
    # what an older facecli wrote after calibrate: no score scale, the calibrated threshold a cosine
    meta.pop("score_scale")
    meta["threshold"], meta["threshold_source"] = 0.97, "calibrated on old/ (maximum F1)"
    (g / "gallery.json").write_text(json.dumps(meta))
    probes = tmp_path / "p"
    write(probes / "a.png", cv2.flip(bgr("astronaut"), 1))  # another photo of a face in the gallery
    r = cli("match", probes, "-g", g, "--layout", "plain", "--out", tmp_path / "m.csv")
    assert r.code == 0, r.err
    assert "face evidence only" in r.out + r.err and "stored before score scales" in r.out + r.err
    row = pd.read_csv(tmp_path / "m.csv", keep_default_na=False).iloc[0]
    assert row["identity"] == "astronaut" and row["evidence"] == "face"


def test_adding_to_a_photo_gallery_keeps_photo_evidence_for_new_people(gallery_root, tmp_path):
    g = tmp_path / "g"
    facecli.build_gallery(gallery_root, out=g)
    extra = tmp_path / "new"
    write(extra / "cat2" / "c.png", cv2.flip(bgr("chelsea"), 1))
    facecli.add_to_gallery(g, extra)
    loaded = facecli.load_gallery(g)
    assert loaded.photos is not None and loaded.photos.rows.count("cat2") == 1
    assert len(loaded.photos.rows) == len(loaded.photos.vectors) == len(loaded.photos.thumbnails) == len(PHOTOS) + 1


def test_gender_of_a_washed_out_face_fuses_the_frame_and_says_so(tmp_path, cli):
    astronaut = bgr("astronaut")
    sunny = astronaut.copy()
    cv2.circle(sunny, (128, 100), 60, (255, 255, 255), -1)
    folder = tmp_path / "photos"
    write(folder / "sunny.png", cv2.GaussianBlur(sunny, (0, 0), 2))
    write(folder / "clear.png", astronaut)
    r = cli("classify", folder, "--out", tmp_path / "g.csv")
    assert r.code == 0, r.err
    rows = pd.read_csv(tmp_path / "g.csv", keep_default_na=False).set_index("path")
    assert rows.loc["sunny.png", "face_status"] == "fallback" and rows.loc["sunny.png", "evidence"] == "face+frame"
    assert rows.loc["clear.png", "evidence"] == "face"
    face_only = facecli.classify_images(folder, frame=False).table.set_index("path")
    assert face_only.loc["sunny.png", "evidence"] == "face"
    assert face_only.loc["sunny.png", "p_female"] != pytest.approx(rows.loc["sunny.png", "p_female"])
    assert face_only.loc["clear.png", "p_female"] == pytest.approx(rows.loc["clear.png", "p_female"])


def test_copy_evidence_of_a_single_candidate_equals_its_value_among_others():
    thumb, usable = probe_thumbnail(glare(bgr("astronaut")))
    cands = np.stack([thumbnail(bgr(n)) for n in PHOTOS])
    assert copy_evidence(thumb, usable, cands[:1]).shape == (1,)
    assert copy_evidence(thumb, usable, cands[:1])[0] == pytest.approx(copy_evidence(thumb, usable, cands)[0], abs=1e-4)


def test_no_photo_evidence_when_the_glare_leaves_almost_nothing():
    img = bgr("astronaut")
    washed = img.copy()
    washed[8:-8, 8:-8] = 255
    thumb, usable = probe_thumbnail(washed)
    assert copy_evidence(thumb, usable, np.stack([thumbnail(img), thumbnail(bgr("coffee"))])).max() == 0.0


def test_a_washed_out_face_without_copy_evidence_is_ranked_by_its_nearest_photos():
    """Nothing fires (the probe's own photo is not in the gallery): a probe whose face is gone gets its
    candidates' identities, in the photo matcher's order, and a probe whose face was found gets nothing."""
    names = list(PHOTOS)
    photos = PhotoSet(names, np.eye(len(names), 8, dtype=np.float32), np.stack([thumbnail(bgr(n)) for n in names]), {})
    thumb, usable = probe_thumbnail(glare(bgr("astronaut")))
    cands = [np.array([3, 1, 3, 2])]  # not the astronaut's photo (row 0): no copy of it among them
    gone, found = vote(photos, cands, [thumb], [usable], [True]), vote(photos, cands, [thumb], [usable], [False])
    assert gone == [PhotoRanking(("rocket", "coffee", "chelsea"))] and found == [None]
    assert vote(photos, [np.array([1, 0])], [thumb], [usable], [True])[0].identity == "astronaut"  # a copy fires


@pytest.mark.parametrize("exact", [False, True])
def test_a_photo_ranking_names_the_nearest_but_never_lifts_a_score(exact):
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((4, 16)).astype(np.float32)
    gallery = in_memory_gallery(vecs, ["ann", "bob", "cy", "dee"])
    probes = np.stack([vecs[0] + 0.1 * rng.standard_normal(16), vecs[1] + 0.1 * rng.standard_normal(16),
                       vecs[2] + 0.1 * rng.standard_normal(16)]).astype(np.float32)
    plain = rank(gallery, probes, 3, exact, Evidence(face_gone=[True, True, False]), threshold=0.5)
    ranking = [PhotoRanking(("dee", "cy")), PhotoRanking(("bob",)), None]
    ev = Evidence(votes=ranking, face_gone=[True, True, False])
    names, sims, _, decided = rank(gallery, probes, 3, exact, ev, threshold=0.5)
    assert plain[0][0][0] == "ann" and names[0] == ["dee", "cy", "ann"] and decided[0] == "photo_nearest"
    own = dict(zip(*[gallery.identities, ev.face_scores(gallery.similarity_matrix(probes[:1])[1], [0])[0]], strict=True))
    assert sims[0] == pytest.approx([own["dee"], own["cy"], own["ann"]], abs=1e-5)  # each its own face score
    assert sims[0][0] < plain[1][0][0]  # so a washed-out face is no more accepted than before
    assert names[1] == plain[0][1] and decided[1] == "face"  # the photo agrees with the face: nothing changes
    assert names[2] == plain[0][2] and decided[2] == "face"  # no ranking: the face decides
