"""Issue 29: ``facecli cluster`` groups unlabelled faces by person; ``evaluate cluster`` scores it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import facecli
from facecli.cluster import Grouping, PhotoData, group
from facecli.clustering import average_linkage
from facecli.decision import Decision
from facecli.metrics import clustering_metrics
from tests.conftest import distort, signal_after_parts, write

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
RUN = "from facecli.cli import main; main()"


def people(n_people: int, per: int, dim: int = 16, spread: float = 0.12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around ``n_people`` random centres, ``per`` each (person k has per + k of them)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, dim))
    x, y = [], []
    for k, c in enumerate(centres):
        for _ in range(per + k):
            x.append(c / np.linalg.norm(c) + spread * rng.normal(size=dim) / np.sqrt(dim))
            y.append(k)
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.asarray(y)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return len(set(zip(a.tolist(), b.tolist(), strict=True))) == len(set(a.tolist())) == len(set(b.tolist()))


# ---------------------------------------------------------------- the algorithm


@pytest.mark.parametrize("threshold", [0.3, 0.6, 0.8, 0.9])
def test_graph_average_linkage_is_exact_average_linkage(threshold):
    from scipy.cluster.hierarchy import fcluster, linkage

    x, _ = people(8, 5, spread=0.6, seed=1)
    exact = fcluster(linkage(x.astype(np.float64), "average", metric="cosine"), 1 - threshold, "distance")
    ours = average_linkage(x, threshold, k=len(x) - 1)
    assert same_partition(ours.labels, exact)
    knn = average_linkage(x, threshold, k=10)  # the k-nearest-neighbour graph finds the same merges here
    assert same_partition(knn.labels, exact)


def test_clusters_are_numbered_largest_first_and_ties_are_their_members_average():
    x, y = people(4, 3, spread=0.1)
    c = average_linkage(x, 0.8)
    assert c.count == 4 and same_partition(c.labels, y)
    assert list(c.sizes) == sorted(c.sizes, reverse=True) and c.labels[y == 3][0] == 0  # person 3 has most
    k = np.flatnonzero(c.labels == 0)
    others = [float(np.mean([x[i] @ x[j] for j in k if j != i])) for i in k]
    assert np.allclose(c.tie[k], others, atol=1e-5)
    left_out = average_linkage(x, 0.8, usable=y != 0)
    assert (left_out.labels[y == 0] == -1).all() and left_out.count == 3


def test_nothing_merges_below_the_threshold_and_everything_above_it():
    x, y = people(3, 4, spread=0.1)
    assert average_linkage(x, 0.9999).count == len(x)
    assert average_linkage(x, -1.0, k=len(x) - 1).count == 1


def test_bcubed_and_pairwise_by_hand():
    m = clustering_metrics(["a", "a", "b", "b"], [1, 1, 1, None])  # b2 in no cluster: a cluster of its own
    assert m["clusters"] == 2 and m["people"] == 2
    assert m["bcubed_precision"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1) / 4)
    assert m["bcubed_recall"] == pytest.approx((1 + 1 + 0.5 + 0.5) / 4)
    assert m["pairwise_precision"] == pytest.approx(1 / 3) and m["pairwise_recall"] == pytest.approx(1 / 2)
    perfect = clustering_metrics(["a", "a", "b"], ["x", "x", "y"])
    assert perfect["bcubed_f"] == 1.0 and perfect["pairwise_f"] == 1.0


# ---------------------------------------------------------------- the table


def face_table(y: np.ndarray, status: list[str] | None = None) -> pd.DataFrame:
    n = len(y)
    return pd.DataFrame({"path": [f"p{i}.jpg" for i in range(n)], "face": [0] * n,
                         "face_status": status or ["detected"] * n, "restored": ["untouched"] * n,
                         "box": ["1 2 3 4"] * n, "error": [""] * n})


def test_group_numbers_names_singletons_and_washed_out_faces():
    x, y = people(3, 3, spread=0.1)
    lone = np.roll(x[0], 5)[None]  # far from everyone
    x2 = np.concatenate([x, lone / np.linalg.norm(lone), x[:1]])
    status = ["detected"] * (len(x) + 1) + ["fallback"]  # a washed-out copy of person 0's first photo
    table = face_table(np.arange(len(x2)), status)
    out = group(table, x2, None, Grouping(Decision(0.8, "given"), 0.8))
    assert list(out.columns) == facecli.cluster.CLUSTER_COLUMNS
    sizes = out["cluster_size"].tolist()
    assert out["cluster"].tolist()[:len(x)] == [3] * 3 + [2] * 4 + [1] * 5  # largest first
    assert out["name"].iat[0] == "person_0003" and out["name"].iat[-3] == "person_0001"
    assert sizes[-2] == 1 and out["name"].iat[-2] == "singleton" and out["evidence"].iat[-2] == ""
    # a washed-out face never links on its (glare) embedding: alone, though its vector equals a member's
    assert out["cluster_size"].iat[-1] == 1 and out["cluster"].iat[-1] == 5 and out["evidence"].iat[-1] == ""


def test_a_copy_whose_face_drifted_rejoins_its_photo_and_look_alike_photos_stay_apart():
    """Three photos of one person and their degraded copies; one copy's face vector drifted away (fog). Photo
    evidence (the copy's thumbnail is its photo's, degraded) moves it back; another person's photo whose
    photo-matcher vector is nearest but whose pixels differ is not moved."""
    from skimage import data

    x, _ = people(2, 6, spread=0.05)  # person 0: rows 0-5, person 1: rows 6-12
    drifted = np.roll(x[0], 3)[None]
    x2 = np.concatenate([x, drifted / np.linalg.norm(drifted)]).astype(np.float32)
    n = len(x2)
    scenes = [data.camera(), data.moon(), data.coins(), data.text()]
    thumbs = np.stack([cv2.resize(scenes[0 if i < 6 else 1], (64, 64)) for i in range(len(x))]
                      + [cv2.GaussianBlur(cv2.resize(scenes[0], (64, 64)), (0, 0), 1.2)])  # a copy of row 0
    pvec = np.zeros((n, 8), np.float16)
    pvec[:, 0] = 1
    pvec[:6, 1], pvec[6:-1, 2], pvec[-1, 1] = 1, 1, 1  # the copy looks like person 0's photos to the matcher
    photo = PhotoData(np.ones(n, bool), pvec, np.zeros(0, np.int64), np.zeros((0, 64, 64), np.uint8),
                      np.zeros((0, 64, 64), bool), lambda rows: thumbs[rows])
    how = Grouping(Decision(0.8, "given"), 0.8)
    alone = group(face_table(np.arange(n)), x2, None, how)
    joined = group(face_table(np.arange(n)), x2, photo, how)
    assert alone["cluster_size"].iat[-1] == 1  # by face alone the drifted copy is a singleton
    assert joined["cluster"].iat[-1] == joined["cluster"].iat[0] and joined["evidence"].iat[-1] == "photo"
    assert joined["confidence"].iat[-1] >= 0.99  # the photo score of a copy
    assert joined["cluster"].iloc[6:-1].nunique() == 1 and joined["cluster"].iat[6] != joined["cluster"].iat[0]
    # a copy whose largest face sits elsewhere in the frame (a bystander found in the degraded copy) is not moved
    elsewhere = face_table(np.arange(n))
    elsewhere.loc[n - 1, "box"] = "150 150 40 40"
    assert group(elsewhere, x2, photo, how)["cluster_size"].iat[-1] == 1
    # a copy of someone else's photo (pixels of person 1's scene) stays where its face put it
    thumbs[-1] = cv2.resize(scenes[1], (64, 64))
    assert group(face_table(np.arange(n)), x2, photo, how)["cluster_size"].iat[-1] == 1


def test_a_gallery_names_the_clusters_it_recognises_and_no_cluster_gets_two_names():
    from facecli.gallery import Gallery

    x, y = people(3, 4, spread=0.1)
    g = Gallery.create(["ann", "bob"], np.stack([x[y == 0][0], x[y == 1][0]]), {"ann": 1, "bob": 1},
                       {"sha256": "x"}, 0.5, per_image=True)
    how = Grouping(Decision(0.8, "given"), 0.8, None, g, Decision(0.8, "given"))
    out = group(face_table(y), x, None, how)
    name_of = {int(k): set(v) for k, v in out.groupby(y)["name"]}
    assert name_of[0] == {"ann"} and name_of[1] == {"bob"} and name_of[2] == {"person_0001"}


# ---------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two people (the astronaut and the cameraman), degraded copies, a cat, a broken file."""
    from skimage import data

    d = tmp_path_factory.mktemp("cluster")
    astro = data.astronaut()[:, :, ::-1]
    astro = cv2.resize(astro[0:300, 100:400], (250, 250))
    write(d / "a" / "astro.jpg", astro)
    for kind in ("blurred", "lowlight", "noisy", "sunny"):
        write(d / "a" / f"astro_{kind}.jpg", distort(astro, kind, seed=2))
    cam = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)[0:300, 150:450]
    write(d / "c" / "cam.jpg", cam)
    write(d / "c" / "cam_blurred.jpg", distort(cam, "blurred", seed=3))
    write(d / "cat.jpg", data.chelsea()[:, :, ::-1])
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    return d


def test_cluster_groups_a_folder_and_writes_a_report(cli, folder, tmp_path):
    out, report = tmp_path / "c.csv", tmp_path / "rep"
    r = cli("cluster", str(folder), "--out", str(out), "--report", str(report), "--part-size", "3")
    assert r.code == 0, r.err
    t = facecli.read_results(out).set_index("path")
    assert list(t.columns) == facecli.cluster.CLUSTER_COLUMNS[1:]
    astro = t.loc[[f"a/astro{s}.jpg" for s in ("", "_blurred", "_lowlight", "_noisy")]]
    assert astro["cluster"].nunique() == 1 and (astro["evidence"] == "face").all()
    assert t.loc["c/cam.jpg", "cluster"] != astro["cluster"].iat[0]
    sunny = t.loc["a/astro_sunny.jpg"]
    assert sunny["cluster"] == astro["cluster"].iat[0] and sunny["evidence"] in ("face", "photo")
    assert t.loc["cat.jpg", "face_status"] == "not_found" and pd.isna(t.loc["cat.jpg", "cluster"])
    assert t.loc["broken.jpg", "error"] and pd.isna(t.loc["broken.jpg", "cluster"])
    assert "clusters (two or more)" in r.err and "files that failed" in r.err and "cluster 1:" in r.err
    page = (report / "index.html").read_text()
    assert page.count('<section class="c" id="cluster-') == t.loc[t["cluster_size"] > 1, "cluster"].dropna().nunique()
    assert page.count("src=\"data:image/jpeg;base64,") >= 6 and "http" not in page.replace("http-equiv", "")


def test_streamed_in_memory_and_resumed_runs_agree(folder, tmp_path):
    whole = tmp_path / "whole.jsonl"
    res = facecli.cluster_faces(folder, out=whole, part_size=2)
    mem = facecli.cluster_faces(folder)
    a = facecli.read_results(whole)
    assert list(a["path"]) == list(mem.table["path"]) and list(a["cluster"].astype("Int64")) == list(mem.table["cluster"])
    assert dict(res.summary_rows()) == dict(mem.summary_rows())
    # a kill after two parts: --resume gives exactly the uninterrupted output
    args = ["cluster", str(folder), "--part-size", "2", "--batch-size", "2"]
    done = tmp_path / "done.csv"
    assert subprocess.run([sys.executable, "-c", RUN, *args, "--out", str(done)], env=ENV).returncode == 0
    out = tmp_path / "killed.csv"
    partial = tmp_path / "killed.csv.partial"
    signal_after_parts([*args, "--out", str(out)], partial, 2, signal.SIGKILL, ENV).wait()
    assert not out.exists()
    r = subprocess.run([sys.executable, "-c", RUN, *args, "--out", str(out), "--resume"], env=ENV,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == done.read_bytes() and not partial.exists()


def test_a_damaged_part_is_a_clear_error(folder, tmp_path):
    from facecli.cluster import read_part, write_part

    t = facecli.cluster.embed_faces(facecli.load_model(None, "identity"), None, [folder / "a" / "astro.jpg"], ["x"],
                                    facecli.options.RunOptions())
    part = tmp_path / "part-00000000.jsonl"
    write_part(part, t)
    rows, arrays = read_part(part)
    assert np.allclose(arrays["_vec"][0], t["_vec"].iat[0]) and rows["path"].tolist() == ["x"]
    part.with_suffix(".npz").write_bytes(b"garbage")
    with pytest.raises(facecli.FacecliError, match="cannot be read"):
        read_part(part)


def test_bad_input_is_one_line(cli, folder, tmp_path):
    r = cli("cluster", str(tmp_path / "missing"), "--out", str(tmp_path / "o.csv"))
    assert r.code == 2 and r.err.strip().splitlines()[-1].startswith("error: ") and "missing" in r.err
    r = cli("cluster", str(folder), "--out", str(tmp_path / "o.txt"))
    assert r.code == 2 and "unknown output format" in r.err
    r = cli("cluster", str(folder), "--out", str(tmp_path / "o.csv"), "--fpir", "0.01")
    assert r.code == 2 and "--gallery" in r.err
    r = cli("cluster", str(folder), "--out", str(tmp_path / "o.csv"), "--fmr", "2")
    assert r.code == 2 and not (tmp_path / "o.csv").exists()


def test_evaluate_cluster_scores_an_identity_folder(cli, folder, tmp_path):
    root = tmp_path / "ids"
    for who, files in (("astro", ["a/astro.jpg"]), ("cam", ["c/cam.jpg"])):
        (root / who / "distortion").mkdir(parents=True)
        for f in files:
            stem = Path(f).stem
            (root / who / f"{stem}.jpg").write_bytes((folder / f).read_bytes())
            for kind in ("blurred",):
                (root / who / "distortion" / f"{stem}_{kind}.jpg").write_bytes(
                    (folder / f).with_name(f"{stem}_{kind}.jpg").read_bytes())
    r = cli("evaluate", "cluster", str(root), "--out", str(tmp_path / "ev"))
    assert r.code == 0, r.err
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["people"] == 2 and m["n"] == 4 and m["bcubed_f"] == 1.0 and m["clusters"] == 2
    kinds = pd.read_csv(tmp_path / "ev" / "per_distortion.csv")
    assert list(kinds["distortion"]) == ["clean", "blurred"]
    r = cli("evaluate", "cluster", str(root), "--out", str(tmp_path / "ev2"), "--exclude", "blurred")
    assert r.code == 0 and json.loads((tmp_path / "ev2" / "metrics.json").read_text())["n"] == 2


def test_the_approximate_index_above_its_size_gives_the_same_clusters(monkeypatch):
    from facecli import clustering

    x, y = people(6, 20, spread=0.1, seed=3)
    exact = average_linkage(x, 0.8)
    monkeypatch.setattr(clustering, "EXACT_BELOW", 10)  # HNSW for the graph, 8-bit HNSW for shortlists
    approx = average_linkage(x, 0.8)
    assert same_partition(approx.labels, exact.labels) and same_partition(approx.labels, y)
    near = clustering.nearest(x.astype(np.float16), np.arange(len(x)), x[:5], 3)
    assert near.shape == (5, 3) and (y[near] == y[:5, None]).all()


def test_copies_beyond_k_still_join_their_person():
    """A face with more than k near-identical copies has only them for neighbours: the level above (the
    nearest cluster means) still finds the person's other photos."""
    rng = np.random.default_rng(4)
    centre = rng.normal(size=16)
    photos = [centre + 0.25 * rng.normal(size=16) for _ in range(3)]
    x = np.stack([p + 0.01 * rng.normal(size=16) for p in photos for _ in range(25)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pair = float(np.mean(x[:25] @ x[25:50].T))
    c = average_linkage(x, min(pair, 0.9) - 0.02, k=5)
    assert c.count == 1


def test_a_gallery_names_clusters_from_the_command_line(cli, folder, tmp_path):
    ids = tmp_path / "ids"
    (ids / "astronaut").mkdir(parents=True)
    (ids / "astronaut" / "a.jpg").write_bytes((folder / "a" / "astro.jpg").read_bytes())
    assert cli("gallery", "build", str(ids), "-g", str(tmp_path / "g")).code == 0
    r = cli("cluster", str(folder), "--gallery", str(tmp_path / "g"), "--out", str(tmp_path / "n.csv"))
    assert r.code == 0, r.err
    t = facecli.read_results(tmp_path / "n.csv").set_index("path")
    assert t.loc["a/astro_blurred.jpg", "name"] == "astronaut" and t.loc["c/cam.jpg", "name"] != "astronaut"
    assert "astronaut" in r.err  # the summary lists the named cluster


def test_the_ray_engine_clusters_exactly_as_the_local_one(folder, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        facecli.cluster_faces(folder, out=tmp_path / "ray.csv", part_size=3, engine="ray")
    finally:
        ray.shutdown()
    facecli.cluster_faces(folder, out=tmp_path / "loc.csv", part_size=3)
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "loc.csv").read_bytes()


def test_link_to_makes_a_folder_of_links_per_cluster(cli, folder, tmp_path):
    links = tmp_path / "by-person"
    r = cli("cluster", str(folder), "--out", str(tmp_path / "c.csv"), "--link-to", str(links))
    assert r.code == 0, r.err
    t = facecli.read_results(tmp_path / "c.csv")
    astro = int(t.loc[t["path"] == "a/astro.jpg", "cluster"].iat[0])
    size = int(t.loc[t["path"] == "a/astro.jpg", "cluster_size"].iat[0])
    sub = next(links.glob(f"{astro:04d}_*"))
    assert len(list(sub.iterdir())) == size
    assert (sub / "astro.jpg").is_symlink() and (sub / "astro.jpg").resolve() == (folder / "a" / "astro.jpg").resolve()
    linked = {p.resolve() for p in links.rglob("*") if p.is_symlink()}
    in_clusters = {(folder / p).resolve() for p in t.loc[t["cluster"].notna(), "path"]}
    assert linked == in_clusters  # every clustered photo, nothing else (no failed file, no faceless cat)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".by-person")]  # no temporary folder left
    again = cli("cluster", str(folder), "--out", str(tmp_path / "d.csv"), "--link-to", str(links))
    assert again.code == 2 and "already exists" in again.err and not (tmp_path / "d.csv").exists()
