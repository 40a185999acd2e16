"""Issue 28 (reliability round 4): each defect as it was triggered, now handled."""

from __future__ import annotations

import csv
import io
import os
import time

import pandas as pd
import pytest

import facecli
from facecli.errors import FacecliError
from tests.conftest import gender_image, signal_after_parts, write


def photos(folder, n: int, seed: int = 0):
    for i in range(n):
        write(folder / f"p{i:03d}.jpg", gender_image(i % 2, seed + i))
    return folder


def interrupted(monkeypatch, run, parts: int = 2) -> None:
    """Run ``run()`` until ``parts`` parts are on disk, then stop it as Ctrl-C would."""
    import facecli.batch as batch

    real, calls = batch.write_json, {"n": 0}

    def stop(path, obj):
        real(path, obj)
        if path.name.startswith("part-"):
            calls["n"] += 1
            if calls["n"] == parts:
                raise KeyboardInterrupt

    monkeypatch.setattr(batch, "write_json", stop)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.setattr(batch, "write_json", real)


def test_r4_1_a_carriage_return_in_a_name_stays_inside_its_cell(cli, tmp_path):
    src = tmp_path / "in"
    write(src / "car\rriage.jpg", gender_image(0, 1))
    write(src / "x\r=SUM(A1:A9).jpg", gender_image(1, 2))
    write(src / "plain.jpg", gender_image(1, 3))
    out = tmp_path / "s.csv"
    assert cli("classify", str(src), "--out", str(out), "--detect", "none").code == 0
    back = facecli.read_results(out)
    assert sorted(back["path"]) == sorted(["car\rriage.jpg", "x\r=SUM(A1:A9).jpg", "plain.jpg"])
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8"), newline="")))
    assert len(rows) == 4 and all(len(r) == len(rows[0]) for r in rows)
    assert not any(cell.startswith("=") for r in rows for cell in r)
    assert len(pd.read_csv(out, keep_default_na=False, dtype=str)) == 3


def test_r4_2_resume_refuses_inputs_whose_contents_changed(tmp_path, monkeypatch):
    src = photos(tmp_path / "p", 12)
    out = tmp_path / "r.csv"
    kw = {"out": out, "part_size": 4, "detect": "none"}
    interrupted(monkeypatch, lambda: facecli.classify_images(src, **kw))
    # another photo, same name, same size: its modification time still tells
    victim = src / "p001.jpg"
    data = (src / "p000.jpg").read_bytes()
    victim.write_bytes(data)
    os.utime(victim, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(FacecliError, match="inputs changed"):
        facecli.classify_images(src, resume=True, **kw)
    # unchanged inputs resume as before
    out2 = tmp_path / "u.csv"
    interrupted(monkeypatch, lambda: facecli.classify_images(src, out=out2, part_size=4, detect="none"))
    res = facecli.classify_images(src, out=out2, part_size=4, detect="none", resume=True)
    assert res.streamed.skipped == 8 and len(facecli.read_results(out2)) == 12


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the socket is: nothing listens there


def test_r4_3_an_unreachable_ray_cluster_is_one_line_before_any_output(cli, tmp_path):
    pytest.importorskip("ray")
    src = photos(tmp_path / "p", 2)
    out = tmp_path / "r.csv"
    t0 = time.monotonic()
    r = cli("classify", str(src), "--out", str(out), "--engine", "ray", "--address", f"127.0.0.1:{closed_port()}")
    assert r.code == 2 and time.monotonic() - t0 < 60
    assert r.err.strip().splitlines()[-1].startswith("error: cannot join the Ray cluster at 127.0.0.1:")
    assert not out.exists() and not (tmp_path / "r.csv.partial").exists()
    with pytest.raises(FacecliError, match="engine='ray'"):  # the API, like the CLI, refuses a lone address
        facecli.classify_images(src, out=out, address="127.0.0.1:1")


def test_r4_4_and_13_unusable_lines_on_stdin_are_error_rows(cli, tmp_path, monkeypatch):
    ok = write(tmp_path / "ok.jpg", gender_image(0, 1))
    listed = f"{ok}\n{'0' * 300}.jpg\n{'x' * 5000}\nnul\0byte.jpg\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(listed))
    out = tmp_path / "s.csv"
    r = cli("classify", "-", "--out", str(out), "--detect", "none")
    assert r.code == 0, r.err
    t = facecli.read_results(out)
    assert len(t) == 4 and (t["error"] != "").sum() == 3
    long_rows = t[t["error"].str.contains("too long")]
    assert len(long_rows) == 2 and all(len(e) < 200 for e in long_rows["error"])  # the name is not repeated
    nul = t[t["error"].str.contains("NUL")]
    assert len(nul) == 1 and "\0" not in nul["path"].iat[0] and "\0" not in out.read_text()


def test_r4_5_an_input_on_stdin_that_is_the_output_is_refused(cli, tmp_path, monkeypatch):
    d = tmp_path / "d"
    d.mkdir()
    photo = d / "photo.csv"  # an image whose name ends in .csv
    photo.write_bytes(write(tmp_path / "x.jpg", gender_image(0, 1)).read_bytes())
    before = photo.read_bytes()
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{photo}\n"))
    r = cli("classify", "-", "--out", str(photo))
    assert r.code == 2 and "is the --out file" in r.err and photo.read_bytes() == before


def test_r4_7_8_9_11_the_partial_folder_is_read_safely(tmp_path, monkeypatch):
    src = photos(tmp_path / "p", 8)
    out = tmp_path / "r.csv"
    kw = {"out": out, "part_size": 4, "detect": "none"}
    # R4-7: a FIFO in place of a part's metadata or of run.json never blocks --resume
    interrupted(monkeypatch, lambda: facecli.classify_images(src, **kw), parts=1)
    partial = tmp_path / "r.csv.partial"
    meta = partial / "part-00000000.json"
    meta.unlink()
    os.mkfifo(meta)
    t0 = time.monotonic()
    facecli.classify_images(src, resume=True, **kw)  # the part is done again
    assert time.monotonic() - t0 < 60 and len(facecli.read_results(out)) == 8
    interrupted(monkeypatch, lambda: facecli.classify_images(src, **{**kw, "out": tmp_path / "f.csv"}), parts=1)
    run_json = tmp_path / "f.csv.partial" / "run.json"
    run_json.unlink()
    os.mkfifo(run_json)
    with pytest.raises(FacecliError, match="no readable run.json"):
        facecli.classify_images(src, resume=True, **{**kw, "out": tmp_path / "f.csv"})
    # R4-8: a partial folder that is a link is refused, nothing is created where it points
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "l.csv.partial").symlink_to(elsewhere)
    with pytest.raises(FacecliError, match="symbolic link"):
        facecli.classify_images(src, **{**kw, "out": tmp_path / "l.csv"})
    assert not list(elsewhere.iterdir())
    # R4-9: a run that failed at its start (only the lock left) does not stand in the way
    (tmp_path / "e.csv.partial").mkdir()
    (tmp_path / "e.csv.partial" / ".lock").write_text("")
    facecli.classify_images(src, **{**kw, "out": tmp_path / "e.csv"})
    assert len(facecli.read_results(tmp_path / "e.csv")) == 8
    (tmp_path / "g.csv.partial").mkdir()
    (tmp_path / "g.csv.partial" / ".lock").write_text("")
    with pytest.raises(FacecliError, match="nothing to resume"):
        facecli.classify_images(src, resume=True, **{**kw, "out": tmp_path / "g.csv"})
    assert not (tmp_path / "g.csv.partial").exists()
    # R4-11: a temporary file a killed join left beside the output is removed by the next run
    stale = tmp_path / ".r.csv.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    facecli.classify_images(src, **{**kw, "out": out.with_name("r.csv")}) if not out.exists() else None
    out.unlink()
    facecli.classify_images(src, **kw)
    assert not stale.exists() and out.exists()


def test_r4_10_read_results_gives_names_back_as_they_were(tmp_path):
    src = tmp_path / "in"
    write(src / "-2+3.jpg", gender_image(0, 1))
    write(src / "=cmd.jpg", gender_image(1, 2))
    a = facecli.classify_images(src, out=tmp_path / "s.csv", detect="none")
    b = facecli.classify_images(src, out=tmp_path / "s.jsonl", detect="none")
    assert a and b
    csv_rows, json_rows = facecli.read_results(tmp_path / "s.csv"), facecli.read_results(tmp_path / "s.jsonl")
    assert sorted(csv_rows["path"]) == sorted(json_rows["path"]) == ["-2+3.jpg", "=cmd.jpg"]
    assert "'=cmd.jpg" in (tmp_path / "s.csv").read_text()  # still neutralised on disk


def test_r4_12_ctrl_c_says_what_was_kept_and_how_to_continue(tmp_path):
    import signal
    import subprocess
    from pathlib import Path

    src = tmp_path / "many"
    src.mkdir()
    seeds = [write(tmp_path / f"s{i}.jpg", gender_image(i % 2, i)) for i in range(4)]
    for i in range(3000):
        os.link(seeds[i % 4], src / f"{i:05d}.jpg")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "o.csv"
    partial = tmp_path / "o.csv.partial"
    p = signal_after_parts(["classify", str(src), "--out", str(out), "--part-size", "50", "--detect", "none"],
                           partial, 2, signal.SIGINT, env, stderr=subprocess.PIPE)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "--resume" in err.strip().splitlines()[-1]
    assert len(list(partial.glob("part-*.json"))) >= 2 and not out.exists()


def test_r4_6_an_older_gallery_s_tampered_index_costs_nothing(tmp_path):
    import json
    import sys

    import faiss
    import numpy as np

    from tests.test_reliability import toy_gallery

    g = tmp_path / "old"
    g.mkdir()
    new = toy_gallery(["a", "b", "c"], photos=False)
    index = faiss.IndexHNSWFlat(16, 32, faiss.METRIC_INNER_PRODUCT)
    index.add(new.vectors)
    blob = bytearray(faiss.serialize_index(index).tobytes())
    blob[8:16] = (2**29).to_bytes(8, "little")  # the header claims 2^29 entries
    (g / "index.faiss").write_bytes(bytes(blob))
    np.save(g / "templates.npy", new.vectors)
    (g / "gallery.json").write_text(json.dumps({**new.meta, "rows": new.rows, "identities": 3, "dim": 16,
                                                "index": "hnsw"}))
    code = """
import sys
import numpy as np
from facecli.gallery import Gallery
g = Gallery.load(sys.argv[1])
names, _ = g.search(g.vectors[:1], 1)
print(names[0][0])
print(next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM")) // 1024)
"""
    import subprocess

    r = subprocess.run([sys.executable, "-c", code, str(g)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    first, peak_mb = r.stdout.split()
    assert first == "a" and int(peak_mb) < 600  # the untrusted index is rebuilt from the templates
    # a checksummed gallery's index is checked against its metadata before FAISS reads it
    from facecli.gallery import _check_index_header

    with pytest.raises(FacecliError, match="corrupt"):
        _check_index_header(g, bytes(blob), 3, 16)
    _check_index_header(g, faiss.serialize_index(index).tobytes(), 3, 16)


def test_r4_13_verify_says_no_evidence_for_a_second_photo_without_a_face(cli, tmp_path):
    import json

    from skimage import data

    a = write(tmp_path / "astro.jpg", data.astronaut()[:, :, ::-1])
    cat = write(tmp_path / "cat.jpg", data.chelsea()[:, :, ::-1])
    r = cli("verify", str(a), str(cat), "--json")
    v = json.loads(r.out)
    assert r.code == 1 and v["face_status_b"] == "not_found" and v["evidence"] == "none" and v["same"] is False
