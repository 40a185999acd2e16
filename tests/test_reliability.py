"""Reliability round 3: nothing lost on a full disk, a kill or a stalled writer; no cell becomes a formula.

Each test names the row of issue 18 it covers (N1 ... N15).
"""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import facecli
from facecli.errors import FacecliError
from facecli.gallery import Gallery, PhotoSet
from tests.conftest import make_identity_root, write

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def toy_gallery(names: list[str], dim: int = 16, photos: bool = True, seed: int = 0) -> Gallery:
    """A gallery of random vectors (no model needed), with photo evidence when ``photos``."""
    rng = np.random.default_rng(seed)
    ps = None
    if photos:
        ps = PhotoSet(list(names), rng.standard_normal((len(names), 8)).astype(np.float32),
                      rng.integers(0, 255, (len(names), 64, 64), dtype=np.uint8), {"sha256": "p", "path": "p.onnx"})
    return Gallery.create(names, rng.standard_normal((len(names), dim)).astype(np.float32),
                          {n: 1 for n in names}, {"sha256": "m", "path": "m.onnx"}, 0.5, photos=ps)


def add_one(name: str, dim: int = 16, seed: int = 1):
    """A Gallery.update change adding identity ``name`` (with a photo)."""
    rng = np.random.default_rng(seed)
    vec = rng.standard_normal((1, dim)).astype(np.float32)
    photo = PhotoSet([name], rng.standard_normal((1, 8)).astype(np.float32),
                     rng.integers(0, 255, (1, 64, 64), dtype=np.uint8), {"sha256": "p", "path": "p.onnx"})
    return lambda g: g.upsert([name], vec, {name: 1}, photo)


def litter(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def data_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in ("gallery.json", ".lock"))


def run_python(code: str, *args: str, fsize: int | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; with ``fsize``, no file it writes may grow past that many bytes
    (RLIMIT_FSIZE: writes beyond it fail with EFBIG, as on a full disk; Python ignores SIGXFSZ)."""

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=ENV,
                          cwd=ROOT, preexec_fn=limit, timeout=timeout)


def one_error_line(stderr: str, *words: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr
    err = [ln for ln in lines if ln.startswith("error: ")]
    assert len(err) == 1, stderr
    for w in words:
        assert w in err[0], err[0]
    return err[0]


# ---------------------------------------------------------------- N1, N14: a full disk while writing a gallery

ADD_CODE = """
import sys, numpy as np
from facecli.errors import FacecliError
from facecli.gallery import Gallery, PhotoSet
g = sys.argv[1]
rng = np.random.default_rng(3)
names = [f"new{i}" for i in range(200)]
photo = PhotoSet(names, rng.standard_normal((200, 8)).astype(np.float32),
                 rng.integers(0, 255, (200, 64, 64), dtype=np.uint8), {"sha256": "p", "path": "p.onnx"})
try:
    Gallery.update(g, lambda gl: gl.upsert(names, rng.standard_normal((200, 16)).astype(np.float32),
                                           {n: 1 for n in names}, photo))
except FacecliError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


def test_n1_full_disk_during_gallery_add_leaves_the_old_gallery_and_no_litter(tmp_path):
    g = tmp_path / "g"
    toy_gallery([f"base{i}" for i in range(5)]).save(g)
    before = data_files(g)
    limit = max((g / n).stat().st_size for n in before) + 1024  # the grown thumbnails no longer fit
    r = run_python(ADD_CODE, str(g), fsize=limit)
    assert r.returncode == 2
    one_error_line(r.stderr, "cannot write gallery", "unchanged")
    assert sorted(Gallery.load(g).identities) == [f"base{i}" for i in range(5)]
    assert data_files(g) == before and litter(g) == []
    r = run_python(ADD_CODE, str(g))  # room again: the add lands
    assert r.returncode == 0, r.stderr
    assert len(Gallery.load(g).identities) == 205


def test_n1_injected_short_write_is_an_error_not_a_truncated_gallery(tmp_path, monkeypatch):
    g = tmp_path / "g"
    toy_gallery(["a", "b"]).save(g)
    real_write = os.write

    def short_write(fd, data):  # the disk takes no more bytes half way through a file
        return 0 if len(data) > 2000 else real_write(fd, data)

    def failing_write(fd, data):
        if len(data) > 2000:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    for fake in (failing_write, short_write):
        monkeypatch.setattr(os, "write", fake)
        with pytest.raises(FacecliError, match="No space left on device|short write"):
            Gallery.update(g, add_one("c"))
        monkeypatch.setattr(os, "write", real_write)
        assert Gallery.load(g).identities == ["a", "b"] and litter(g) == []


def test_n14_a_new_gallery_that_cannot_be_written_leaves_no_folder(tmp_path):
    code = """
import sys, numpy as np
from facecli.errors import FacecliError
from tests.test_reliability import toy_gallery
try:
    toy_gallery([f"p{i}" for i in range(300)]).save(sys.argv[1])
except FacecliError as exc:
    print(f"error: {exc}", file=sys.stderr); sys.exit(2)
"""
    r = run_python(code, str(tmp_path / "new"), fsize=20_000)
    assert r.returncode == 2
    one_error_line(r.stderr, "cannot write gallery")
    assert not (tmp_path / "new").exists()


def test_n14_the_next_write_removes_litter_and_old_versions(tmp_path):
    g = tmp_path / "g"
    toy_gallery(["a"]).save(g)
    (g / ".index.faiss.123.tmp").write_bytes(b"x" * 10)  # what a kill left
    (g / "templates-deadbeef.npy").write_bytes(b"y")  # a version no gallery.json names any more
    for name in ("b", "c", "d"):
        Gallery.update(g, add_one(name))
    files = data_files(g)
    assert litter(g) == [] and "templates-deadbeef.npy" not in files
    # the current version and the previous one (a reader may still be reading it), nothing older
    assert len([f for f in files if f.startswith("templates-")]) == 2
    assert Gallery.load(g).identities == ["a", "b", "c", "d"]


# ---------------------------------------------------------------- N2: a kill at any moment of a write

KILL_CODE = """
import sys
from facecli.gallery import Gallery
from tests.test_reliability import add_one
for i in range(int(sys.argv[2]), 100000):
    Gallery.update(sys.argv[1], add_one(f"add{i}", seed=i))
    print(i, flush=True)
"""


def test_n2_sigkill_during_writes_leaves_the_old_or_the_new_gallery(tmp_path):
    g = tmp_path / "g"
    base = [f"base{i}" for i in range(5)]
    toy_gallery(base).save(g)
    rng = random.Random(0)
    start, kills_in_loop = 0, 0
    for _ in range(12):
        p = subprocess.Popen([sys.executable, "-c", KILL_CODE, str(g), str(start)], stdout=subprocess.PIPE,
                             text=True, env=ENV, cwd=ROOT)
        time.sleep(0.8 + rng.random() * 0.6)  # past the imports, into the loop of writes
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        lines = out.split()
        last = int(lines[-1]) if lines else start - 1
        loaded = Gallery.load(g)  # never corrupt, never mismatched
        assert len(loaded.rows) == len(loaded.vectors) == len(loaded.photos.rows) == len(loaded.photos.vectors)
        got = set(loaded.identities) - set(base)
        # everything committed is there; at most the one write in flight also landed (killed after its rename)
        assert {f"add{i}" for i in range(last + 1)} <= got <= {f"add{i}" for i in range(last + 2)}
        kills_in_loop += bool(lines)
        start = 1 + max((int(n[3:]) for n in got), default=-1)
    assert kills_in_loop >= 6  # most kills did land inside the loop of writes
    Gallery.update(g, add_one("after"))
    assert litter(g) == []


# ---------------------------------------------------------------- N3, N4, N6: outputs


def test_n3_out_naming_an_input_photo_is_refused_and_the_photo_kept(cli, tmp_path):
    photo = write(tmp_path / "photos" / "a.jpg", np.full((40, 40, 3), 90, np.uint8))
    before = photo.read_bytes()
    r = cli("classify", tmp_path / "photos", "--out", photo)
    one_error_line(r.err, "--out", "image")
    assert r.code == 2 and photo.read_bytes() == before
    from facecli.atomic import check_output_file

    listed = tmp_path / "list.csv"
    listed.write_text("x")
    with pytest.raises(FacecliError, match="one of the inputs"):
        check_output_file(tmp_path / "." / "list.csv", inputs=[listed])


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))[1:]


FORMULA_NAMES = ["=HYPERLINK(1)", "+1", "-2", "@SUM(1)", "\tx", "\rx"]


def test_n4_csv_cells_that_would_start_a_formula_are_neutralised(tmp_path):
    from facecli.outputs import write_csv

    t = pd.DataFrame({"path": [*FORMULA_NAMES, "plain.jpg"], "p": [-0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    write_csv(tmp_path / "safe.csv", t)
    rows = read_rows(tmp_path / "safe.csv")
    # a bare CR ends a row for csv readers: compare the cells before it; the file holds the whole name
    assert [r[0] for r in rows][:5] == ["'" + n for n in FORMULA_NAMES[:5]]
    assert "'\rx" in (tmp_path / "safe.csv").read_bytes().decode()
    assert pd.read_csv(tmp_path / "safe.csv")["p"].iloc[:4].tolist() == t["p"].iloc[:4].tolist()  # numbers kept
    write_csv(tmp_path / "raw.csv", t, raw=True)
    assert [r[0] for r in read_rows(tmp_path / "raw.csv") if r][:5] == FORMULA_NAMES[:5]


def test_n4_match_csv_neutralises_file_and_identity_names(cli, tmp_path, identity_model):
    _, onnx = identity_model
    root = make_identity_root(tmp_path / "ids", ["=HYPERLINK(x)", "@SUM(1)", "-minus"], {}, seed=7)
    g = tmp_path / "g"
    assert cli("gallery", "build", root, "-g", g, "--model", onnx, "--no-photo").code == 0
    out = tmp_path / "m.csv"
    assert cli("match", root, "-g", g, "--out", out).code == 0
    df = pd.read_csv(out, keep_default_na=False)
    for col in ("path", "identity", "true_identity"):
        cells = [c for c in df[col] if c and c != "unknown"]
        assert cells and all(c.startswith("'") for c in cells), (col, cells[:3])
    assert cli("match", root, "-g", g, "--out", out, "--raw-csv").code == 0
    assert set(pd.read_csv(out, keep_default_na=False)["true_identity"]) == {"=HYPERLINK(x)", "@SUM(1)", "-minus"}


def test_n6_an_output_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path, gender_model):
    _, onnx = gender_model
    for i in range(3):
        write(tmp_path / "p" / f"{i}.jpg", np.full((40, 40, 3), 60 + i, np.uint8))
    code = "import sys; from facecli.cli import main; sys.argv = ['facecli', *sys.argv[1:]]; main()"
    out = tmp_path / "o" / "r.csv"
    r = run_python(code, "classify", str(tmp_path / "p"), "--out", str(out), "--model", str(onnx), fsize=50)
    assert r.returncode == 2
    one_error_line(r.stderr, "cannot write", "r.csv")
    assert not out.exists() and litter(out.parent) == []


def test_n6_an_unwritable_output_folder_is_refused_before_the_work(tmp_path, monkeypatch):
    import tempfile

    from facecli.atomic import check_output_file

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(FacecliError, match="cannot write in .*Read-only file system"):
        check_output_file(tmp_path / "sub" / "r.csv")


# ---------------------------------------------------------------- N5, N8: locks


def test_n5_readers_create_no_lock_and_a_linked_lock_is_refused(cli, tmp_path):
    g = tmp_path / "g"
    toy_gallery(["a"]).save(g)
    (g / ".lock").unlink()
    outside = tmp_path / "outside"
    (g / ".lock").symlink_to(outside)
    assert cli("gallery", "info", g).code == 0
    Gallery.load(g)
    assert not outside.exists()
    (g / ".lock").unlink()
    Gallery.load(g)
    assert not (g / ".lock").exists()  # a read leaves nothing behind
    (g / ".lock").symlink_to(outside)
    with pytest.raises(FacecliError, match="symbolic link"):
        Gallery.update(g, add_one("b"))
    assert not outside.exists()


def test_n8_readers_never_wait_and_a_waiting_writer_gives_up(tmp_path, capsys):
    g = tmp_path / "g"
    toy_gallery(["a"]).save(g)
    fd = os.open(g / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a stalled writer holds the lock
    try:
        t0 = time.monotonic()
        assert Gallery.load(g).identities == ["a"]
        assert time.monotonic() - t0 < 5
        with pytest.raises(FacecliError, match="being written by another process; gave up after 0.3 s"):
            Gallery.update(g, add_one("b"), lock_timeout=0.3)
        assert capsys.readouterr().err.count("waiting for another writer") == 1
    finally:
        os.close(fd)
    Gallery.update(g, add_one("b"), lock_timeout=0.3)  # released: it goes through
    assert Gallery.load(g).identities == ["a", "b"]


def test_n8_gallery_add_waits_in_one_line_and_exits_2(cli, tmp_path, identity_model, identity_data):
    _, onnx = identity_model
    g = tmp_path / "g"
    assert cli("gallery", "build", identity_data / "train", "-g", g, "--model", onnx, "--no-photo").code == 0
    new = make_identity_root(tmp_path / "new", ["newcomer"], {}, seed=9)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
                               "os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); "
                               "time.sleep(60)", str(g / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cli("gallery", "info", g).code == 0  # readers go on
        r = cli("gallery", "add", new, "-g", g, "--lock-timeout", "0.5")
        assert r.code == 2
        one_error_line(r.err, "being written by another process", "--lock-timeout")
        assert "waiting for another writer" in r.err
    finally:
        holder.kill()
        holder.wait()
    assert cli("gallery", "add", new, "-g", g, "--lock-timeout", "5").code == 0
    assert "newcomer" in Gallery.load(g).identities


# ---------------------------------------------------------------- N7, N9, N12, N15: what a gallery folder holds


def tamper(g: Path, **fields) -> None:
    meta = json.loads((g / "gallery.json").read_text())
    meta.update(fields)
    (g / "gallery.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("fields, word", [
    ({"rows": [[1], {"a": 2}]}, "rows"),
    ({"threshold": "abc"}, "threshold"),
    ({"image_counts": [1, 2]}, "image_counts"),
    ({"model": "x"}, "model"),
    ({"dim": "16"}, "dim"),
    ({"photo": {"rows": 3}}, "photo"),
    ({"files": {"templates": {"name": "../../etc/passwd", "bytes": 1, "sha256": "0"}}}, "templates"),
])
def test_n7_wrong_field_types_are_one_line(cli, tmp_path, fields, word):
    g = tmp_path / "g"
    toy_gallery(["a", "b"]).save(g)
    tamper(g, **fields)
    r = cli("gallery", "info", g)
    assert r.code == 2
    one_error_line(r.err, "corrupt", word)


def test_n12_an_infinite_threshold_is_refused_not_written_back(cli, tmp_path):
    g = tmp_path / "g"
    toy_gallery(["a"]).save(g)
    text = (g / "gallery.json").read_text().replace('"threshold": 0.5', '"threshold": 1e999')
    (g / "gallery.json").write_text(text)
    r = cli("gallery", "info", g)
    one_error_line(r.err, "threshold", "finite")
    with pytest.raises(FacecliError, match="threshold"):
        Gallery.update(g, add_one("b"))
    assert "Infinity" not in (g / "gallery.json").read_text()


HUGE_NPY = """
import sys
from facecli.errors import FacecliError
from facecli.gallery import Gallery
try:
    Gallery.load(sys.argv[1])
except FacecliError as exc:
    print(exc)
# VmHWM: this program's peak RSS (ru_maxrss would count the forking test process too)
print(next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM")) // 1024)
"""


def npy_claiming(shape: tuple[int, ...]) -> bytes:
    """A tiny .npy file whose header claims ``shape`` float32 values."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 1024


def test_n9_tampered_data_files_are_refused_before_anything_is_allocated(tmp_path):
    g = tmp_path / "g"
    toy_gallery(["a", "b"]).save(g)
    meta = json.loads((g / "gallery.json").read_text())
    name = meta["files"]["templates"]["name"]
    blob = npy_claiming((2**29, 16))
    (g / name).write_bytes(blob)
    with pytest.raises(FacecliError, match="corrupt"):
        Gallery.load(g)
    # a tamperer who also rewrites the checksum: the header is checked before the data is read
    meta["files"]["templates"].update(bytes=len(blob), sha256=hashlib.sha256(blob).hexdigest())
    (g / "gallery.json").write_text(json.dumps(meta))
    r = run_python(HUGE_NPY, str(g))
    message, peak_mb = r.stdout.strip().splitlines()
    assert "holds (536870912, 16)" in message and int(peak_mb) < 600
    # an older gallery (no checksums): its files are capped by what its metadata allows
    old = tmp_path / "old"
    old.mkdir()
    (old / "templates.npy").write_bytes(npy_claiming((2**29, 16)))
    (old / "index.faiss").write_bytes(b"IxFI" + b"\xff" * 1600)
    legacy = {k: v for k, v in meta.items() if k not in ("files", "photo")}
    (old / "gallery.json").write_text(json.dumps(legacy))
    r = run_python(HUGE_NPY, str(old))
    message, peak_mb = r.stdout.strip().splitlines()
    assert "corrupt" in message and int(peak_mb) < 600


def test_n15_messages(cli, tmp_path):
    write(tmp_path / "photos" / "a.jpg", np.full((40, 40, 3), 90, np.uint8))
    r = cli("match", tmp_path / "photos", "-g", tmp_path / "photos")
    one_error_line(r.err, "not a facecli gallery", "gallery.json")
    r = cli("classify", tmp_path / "photos", "--threshold", "nan")
    one_error_line(r.err, "--threshold", "nan")


# ---------------------------------------------------------------- N10, N11, N13: models, scans, the API


def test_n10_an_absurd_model_input_size_is_refused(tmp_path):
    from facecli.face.preprocess import Preprocessing

    for bad in (100000, 0, "112", True):
        with pytest.raises(ValueError, match="input size"):
            Preprocessing.from_dict({"size": bad})
    from facecli.card import ModelCard

    card = facecli.load_model(None, "gender").card.to_dict()
    card["preprocessing"]["size"] = 100000
    with pytest.raises(ValueError, match="input size"):
        ModelCard.from_dict(card)


def deep_folder(root: Path, depth: int = 200) -> int:
    """``depth`` nested folders of 30-character names under ``root`` (a path far past PATH_MAX) with an image at
    the bottom; returns the number of images written."""
    import cv2

    fd = os.open(root, os.O_RDONLY)
    try:
        for i in range(depth):
            name = f"{i:030d}"
            os.mkdir(name, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        ok, buf = cv2.imencode(".jpg", np.full((40, 40, 3), 90, np.uint8))
        out = os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, buf.tobytes())
        os.close(out)
    finally:
        os.close(fd)
    return 1


def test_n11_a_folder_that_cannot_be_listed_is_an_error_row(tmp_path):
    from facecli.scan import Unlisted, scan_images

    write(tmp_path / "top.jpg", np.full((40, 40, 3), 90, np.uint8))
    deep_folder(tmp_path)
    found = scan_images(tmp_path)
    assert any(isinstance(f, Unlisted) for f in found)
    res = facecli.classify_images(tmp_path)
    errors = [e for e in res.table["error"] if isinstance(e, str) and e]
    assert len(res.table) == 2 and errors and "cannot list folder" in errors[0]


def test_n13_api_refuses_raw_bytes_and_a_missing_gallery():
    img = np.zeros((20, 20, 3), np.uint8)
    for blob in (img.tobytes(), bytearray(3), memoryview(b"abc")):
        with pytest.raises(FacecliError, match="not raw"):
            facecli.classify_images(blob)
    with pytest.raises(FacecliError, match="gallery"):
        facecli.match_probes(img, None)
    with pytest.raises(FacecliError, match="gallery"):
        facecli.add_to_gallery(None, ".")



# ---------------------------------------------------------------- galleries written before this layout


def test_an_older_gallery_reads_as_it_is_and_is_converted_on_its_next_write(tmp_path):
    import faiss

    g = tmp_path / "old"
    g.mkdir()
    new = toy_gallery(["a", "b", "c"])
    faiss.write_index(new.index(), str(g / "index.faiss"))  # what the previous release wrote
    np.save(g / "templates.npy", new.vectors)
    np.save(g / "photo_vectors.npy", new.photos.vectors)
    np.save(g / "thumbnails.npy", new.photos.thumbnails)
    meta = {**new.meta, "rows": new.rows, "identities": 3, "dim": 16, "index": "flat_inner_product",
            "photo": {"model": new.photos.model, "rows": new.photos.rows}}
    (g / "gallery.json").write_text(json.dumps(meta))
    old = Gallery.load(g)
    assert old.identities == ["a", "b", "c"] and np.allclose(old.vectors, new.vectors)
    assert np.array_equal(old.photos.thumbnails, new.photos.thumbnails)
    Gallery.update(g, add_one("d"))
    assert "files" in json.loads((g / "gallery.json").read_text())
    Gallery.update(g, add_one("e"))
    assert not (g / "templates.npy").exists()  # kept one version for readers, then removed
    assert Gallery.load(g).identities == ["a", "b", "c", "d", "e"]


def test_data_files_that_are_not_regular_files_are_refused_without_waiting(cli, tmp_path):
    g = tmp_path / "g"
    toy_gallery(["a"]).save(g)
    name = json.loads((g / "gallery.json").read_text())["files"]["templates"]["name"]
    cases = {"fifo": lambda p: os.mkfifo(p), "device": lambda p: p.symlink_to("/dev/zero")}
    for what, make in cases.items():
        (g / name).unlink()
        make(g / name)
        r = run_python("import sys\nfrom facecli.cli import main\nsys.argv = ['facecli', 'gallery', 'info', "
                       f"{str(g)!r}]\nmain()", timeout=30)
        assert r.returncode == 2, (what, r.stderr)
        one_error_line(r.stderr, "corrupt", name)
    meta = json.loads((g / "gallery.json").read_text())
    meta["files"]["templates"]["bytes"] = "abc"
    (g / "gallery.json").write_text(json.dumps(meta))
    one_error_line(cli("gallery", "info", g).err, "size and checksum")
    (g / "gallery.json").write_text("[" * 100000 + "]" * 100000)
    one_error_line(cli("gallery", "info", g).err, "not valid JSON")
