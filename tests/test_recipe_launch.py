"""Every training recipe launches the same way (``python -m facecli.training.<recipe>``, through
:func:`facecli.training.recipe.recipe_main`): its help lists every option with its default."""

from __future__ import annotations

import importlib
import sys

import pytest

RECIPES = ["distill_identity", "gender_head", "gender_frame", "calibrate_scores", "soup", "mtcnn", "dlib_resnet"]


@pytest.mark.train
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_help_lists_its_options_with_defaults(name, monkeypatch, capsys):
    mod = importlib.import_module(f"facecli.training.{name}")
    calls = []
    real = importlib.import_module("facecli.training.recipe").recipe_main
    monkeypatch.setattr(mod, "recipe_main", lambda *a, **k: calls.append(a) or real(*a, **k), raising=False)
    monkeypatch.setattr("facecli.training.recipe.recipe_main", lambda *a, **k: calls.append(a) or real(*a, **k))
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit) as done:
        mod.main()
    assert done.value.code == 0 and calls, f"{name} does not launch through recipe_main"
    text = capsys.readouterr().out
    options = [ln.split()[0] for ln in text.splitlines() if ln.strip().startswith("--") and ln.split()[0] != "--help"]
    assert options and "default" in text, text


@pytest.mark.train
def test_a_recipe_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    """Bad input to a recipe (here a missing or broken model file) ends it with one ``error:`` line and a
    non-zero status, not a traceback."""
    from facecli.training import soup

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    for path, says in ((tmp_path / "missing.onnx", "cannot read"), (broken, "is not an ONNX model")):
        monkeypatch.setattr(sys, "argv", ["soup", str(path), "--out", str(tmp_path / "out.onnx")])
        with pytest.raises(SystemExit) as done:
            soup.main()
        assert str(done.value).startswith("error: ") and says in str(done.value) and "\n" not in str(done.value)
    assert not (tmp_path / "out.onnx").exists()
