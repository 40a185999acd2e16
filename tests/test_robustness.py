"""Nothing lost, nothing crashes: concurrent gallery writers, huge images, refused option values, odd files."""

from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from facecli.decode import DecodeError, read_image
from facecli.gallery import Gallery
from tests.conftest import make_identity_root, write

ROOT = Path(__file__).resolve().parents[1]


def facecli_process(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "facecli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=ROOT)


# ---------------------------------------------------------------- concurrent galleries


def test_concurrent_gallery_adds_all_land_and_readers_never_see_a_gap(tmp_path, identity_model, identity_data, cli):
    _, onnx_path = identity_model
    g = tmp_path / "gallery"
    assert cli("gallery", "build", identity_data / "train", "--gallery", g, "--model", onnx_path).code == 0
    before = set(Gallery.load(g).identities)
    roots = []
    for k in range(3):
        ids = [f"new{k}_{i}" for i in range(3)]
        roots.append(make_identity_root(tmp_path / f"add{k}", ids, {}, seed=10 + k))
    stop = threading.Event()
    read_errors: list[str] = []
    reads = [0]

    def reader() -> None:  # a concurrent 'match' must always find a whole gallery
        while not stop.is_set():
            try:
                gl = Gallery.load(g)
                assert len(gl.rows) == len(gl.vectors)
                reads[0] += 1
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                read_errors.append(repr(exc))

    t = threading.Thread(target=reader)
    t.start()
    try:
        procs = [facecli_process("gallery", "add", r, "--gallery", g, "--model", onnx_path) for r in roots]
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        stop.set()
        t.join()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()
    final = set(Gallery.load(g).identities)
    assert final == before | {f"new{k}_{i}" for k in range(3) for i in range(3)}  # 9 added, none lost
    assert read_errors == [] and reads[0] > 0


def test_gallery_folder_has_normal_permissions(tmp_path, identity_model, identity_data, cli):
    _, onnx_path = identity_model
    old = os.umask(0o022)
    try:
        g = tmp_path / "gallery"
        assert cli("gallery", "build", identity_data / "train", "--gallery", g, "--model", onnx_path).code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(g.stat().st_mode) == 0o755
    assert stat.S_IMODE((g / "gallery.json").stat().st_mode) == 0o644


def test_identity_names_with_separators_round_trip_in_list_columns(tmp_path, identity_model, cli):
    _, onnx_path = identity_model
    names = ["a|b", "c, d", 'e "f"']
    root = make_identity_root(tmp_path / "ids", names, {}, seed=5)
    g = tmp_path / "gallery"
    assert cli("gallery", "build", root, "--gallery", g, "--model", onnx_path).code == 0
    out = tmp_path / "m.csv"
    r = cli("match", root, "--gallery", g, "--model", onnx_path, "--out", out, "--top-k", "3")
    assert r.code == 0, r.err
    df = pd.read_csv(out, keep_default_na=False)
    for top, sims in zip(df["top_k"], df["top_k_similarity"], strict=True):
        top, sims = json.loads(top), json.loads(sims)
        assert len(top) == len(sims) == 3 and set(top) == set(names)


# ---------------------------------------------------------------- images that are too big, odd files


def huge_jpeg(path: Path, w: int, h: int) -> Path:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (40, 90, 200)
    assert cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 50])
    return path


def png_claiming(path: Path, w: int, h: int) -> Path:
    """A small PNG whose header claims w x h pixels (a decompression bomb's header)."""
    ok, buf = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
    data = bytearray(buf.tobytes())
    ihdr = data[12:29]  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", w, h)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def test_large_jpeg_is_decoded_reduced(tmp_path):
    p = huge_jpeg(tmp_path / "big.jpg", 8000, 6000)
    img = read_image(p)
    assert img.shape == (1500, 2000, 3)  # 1/4 of each side: enough for any model input, 1/16 of the memory
    assert tuple(img[750, 100]) == pytest.approx((40, 90, 200), abs=8) and img[750, 1900].max() < 8


def test_ordinary_images_keep_full_size(tmp_path):
    p = huge_jpeg(tmp_path / "portrait.jpg", 1024, 1536)
    assert read_image(p).shape == (1536, 1024, 3)


def test_too_many_pixels_is_a_clear_error(tmp_path):
    p = png_claiming(tmp_path / "bomb.png", 60000, 60000)
    with pytest.raises(DecodeError, match=r"too many pixels \(60000 x 60000\)"):
        read_image(p)


def test_fifo_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(DecodeError, match="not a regular file"):
        read_image(fifo)


def test_batch_goes_on_past_bombs_and_fifos(tmp_path, cli, gender_model):
    _, onnx_path = gender_model
    folder = tmp_path / "p"
    write(folder / "ok.jpg", np.full((64, 64, 3), 128, np.uint8))
    png_claiming(folder / "bomb.png", 60000, 60000)
    os.mkfifo(folder / "pipe.jpg")
    out = tmp_path / "r.csv"
    r = cli("classify", folder, "--out", out, "--model", onnx_path)
    assert r.code == 0, r.err
    df = pd.read_csv(out, keep_default_na=False).set_index("path")
    assert df.loc["ok.jpg", "error"] == ""
    assert df.loc["bomb.png", "error"] == "too many pixels (60000 x 60000)"
    assert df.loc["pipe.jpg", "error"] == "not a regular file"


# ---------------------------------------------------------------- refused values, outputs checked first


def one_line_error(r, *words) -> None:
    assert r.code == 2, (r.code, r.out, r.err)
    text = " ".join(r.err.split())
    assert "Traceback" not in r.err
    for w in words:
        assert w in text, text


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "2", "-1.5"])
def test_threshold_out_of_range_is_refused(cli, tmp_path, gender_model, value):
    """The range comes from the model card: P(female) in [0, 1]; cosine similarity in [-1, 1] (so -1 is a
    valid match threshold); values outside every range fail before any file is read."""
    _, onnx_path = gender_model
    write(tmp_path / "p" / "a.jpg", np.full((32, 32, 3), 90, np.uint8))
    out = tmp_path / "r.csv"
    one_line_error(cli("classify", tmp_path / "p", "--out", out, "--model", onnx_path, f"--threshold={value}"),
                   "--threshold")
    if value != "-1":
        one_line_error(cli("match", tmp_path / "p", "--gallery", tmp_path / "g", "--out", out,
                           f"--threshold={value}"), "--threshold")
    assert not out.exists()


@pytest.mark.parametrize("cmd", [["classify"], ["match"], ["gallery", "build"]])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_batch_size_below_one_is_refused_before_any_output(cli, tmp_path, cmd, value):
    folder = tmp_path / "p"
    write(folder / "a.jpg", np.full((32, 32, 3), 90, np.uint8))
    out = tmp_path / "results.csv"
    out.write_text("precious\n")
    one_line_error(cli(*cmd, folder, f"--batch-size={value}", *(["--out", out] if cmd[0] != "gallery" else [])),
                   "--batch-size")
    assert out.read_text() == "precious\n"  # an existing output is never touched by a refused run


@pytest.mark.parametrize("value", ["0", "-1"])
def test_top_k_below_one_is_refused(cli, tmp_path, value):
    write(tmp_path / "p" / "a.jpg", np.full((32, 32, 3), 90, np.uint8))
    one_line_error(cli("match", tmp_path / "p", f"--top-k={value}"), "--top-k")


def test_far_outside_zero_one_is_refused(cli, tmp_path):
    one_line_error(cli("calibrate", tmp_path, "--objective", "far", "--far", "5"), "--far")


def test_out_pointing_at_a_folder_fails_before_the_work(cli, tmp_path, gender_model):
    _, onnx_path = gender_model
    write(tmp_path / "p" / "a.jpg", np.full((32, 32, 3), 90, np.uint8))
    (tmp_path / "taken").mkdir()
    r = cli("classify", tmp_path / "p", "--out", tmp_path / "taken", "--model", onnx_path)
    one_line_error(r, "--out", "folder")
    assert "classify" not in r.err.split("\n")[0] or "━" not in r.err  # no progress bar: nothing was processed


def test_metrics_json_is_strict(tmp_path):
    from facecli.atomic import write_json

    p = tmp_path / "m.json"
    write_json(p, {"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32("nan"), "d": 0.5})
    text = p.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": None, "d": 0.5}
