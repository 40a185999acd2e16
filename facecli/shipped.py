"""Where the shipped models live: a leaf module (nothing of facecli below it), so the detector and the runtime
can both find their files without importing each other."""

from __future__ import annotations

from pathlib import Path


def models_dir() -> Path:
    """Where the shipped models are: the ``facecli.models`` package (``models/`` in a source checkout)."""
    from importlib.resources import files

    return Path(str(files("facecli.models")))
