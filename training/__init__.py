"""Training side of facecli (``pip install 'facecli[train]'``): data, augmentation, the backbone registry,
losses, the one trainer, ONNX export, and the recipes that made the shipped models.

The code lives in the repository's top-level ``training/`` folder and installs as ``facecli.training``.
"""

import importlib.util


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_missing = [name for name in ("torch", "timm", "albumentations", "onnx", "safetensors") if not _installed(name)]
if _missing:
    raise ImportError(f"training and export need the train extra ({', '.join(_missing)} missing): "
                      "pip install 'facecli[train]'")
