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
