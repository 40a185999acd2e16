"""facecli: gender classification and distortion-robust face recognition, from Python or the command line.

Every ``facecli`` command is one of these functions, which take folders, file paths and in-memory RGB
numpy arrays alike (see :mod:`facecli.api` for the conventions):

- models and images: :func:`load_model`, :func:`load_image`, :func:`detect_faces`
- gender: :func:`classify_images`, :func:`evaluate_gender`
- recognition: :func:`embed_images`, :func:`build_gallery`, :func:`add_to_gallery`, :func:`rebuild_gallery`,
  :func:`load_gallery`,
  :func:`match_probes`, :func:`verify` (two photos: the same person?), :func:`calibrate_threshold`,
  :func:`evaluate_identity`
- who is in a folder: :func:`cluster_faces` (group faces by person, no names needed), :func:`evaluate_cluster`
- results files (.csv, .parquet, .jsonl): :func:`read_results`
- records: :class:`ModelCard` (what a model is and how to feed it), :class:`Preprocessing`,
  :class:`Gallery`, :class:`RunOptions` (detection, batch size, device, threads, progress: how any run goes);
  every bad value raises :class:`FacecliError` with a one-line message
- results: every verb returns one (:class:`ClassifyRun`, :class:`MatchRun`, :class:`GalleryBuild`,
  :class:`GenderEval`, :class:`IdentityEval`, :class:`ClusterRun`, :class:`ClusterEval`) with ``.table``,
  ``.summary_rows()`` and ``.save(path)``.

Example::

    import facecli

    img = facecli.load_image("photo.jpg")             # or any RGB uint8 array
    print(facecli.classify_images(img).table)        # label and p_female for each face
    built = facecli.build_gallery("Task_B/train", out="gallery")
    run = facecli.match_probes("Task_B/val", built.gallery)
    print(run.table[["path", "identity", "similarity"]])

Training (``facecli[train]``) lives in :mod:`facecli.training`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from pathlib import Path

__version__ = "0.3.0"

# The wheel installs the repository's top-level training/ and models/ inside the package, as facecli.training
# and facecli.models (pyproject.toml maps them). In a source checkout those two names, and only those, are
# found beside facecli/ by this finder, so the same files import under the same names everywhere (and
# nothing else at the top level, tests/ or scripts/, becomes part of facecli).
_CHECKOUT = Path(__file__).resolve().parent.parent
_MAPPED = {"facecli.training": _CHECKOUT / "training", "facecli.models": _CHECKOUT / "models"}


class _CheckoutFinder(importlib.abc.MetaPathFinder):
    """Finds facecli.training and facecli.models in a source checkout."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        folder = _MAPPED.get(name)
        if folder is None or not (folder / "__init__.py").is_file():
            return None
        return importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])


if (_CHECKOUT / "pyproject.toml").is_file() and not (Path(__file__).resolve().parent / "training").is_dir():
    sys.meta_path.insert(0, _CheckoutFinder())

from facecli.api import (  # noqa: E402
    add_to_gallery,
    build_gallery,
    calibrate_threshold,
    classify_images,
    cluster_faces,
    detect_faces,
    embed_images,
    evaluate_cluster,
    evaluate_gender,
    evaluate_identity,
    load_gallery,
    load_image,
    load_model,
    match_probes,
    read_results,
    rebuild_gallery,
    verify,
)
from facecli.card import ModelCard, resolve_threshold  # noqa: E402
from facecli.errors import FacecliError  # noqa: E402
from facecli.face.preprocess import Preprocessing  # noqa: E402
from facecli.gallery import Gallery  # noqa: E402
from facecli.options import RunOptions  # noqa: E402

# result classes load their modules (pandas) on first use, so `facecli --version` stays fast
_LAZY = {"Verdict": "facecli.verification",
         "ClassifyRun": "facecli.classify", "MatchRun": "facecli.recognise", "GalleryBuild": "facecli.recognise",
         "GenderEval": "facecli.evaluate", "IdentityEval": "facecli.evaluate", "ClusterRun": "facecli.cluster",
         "ClusterEval": "facecli.cluster_eval"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'facecli' has no attribute {name!r}")


__all__ = [
    "ClassifyRun",
    "ClusterEval",
    "ClusterRun",
    "FacecliError",
    "Gallery",
    "GalleryBuild",
    "GenderEval",
    "IdentityEval",
    "MatchRun",
    "ModelCard",
    "Preprocessing",
    "RunOptions",
    "Verdict",
    "__version__",
    "add_to_gallery",
    "build_gallery",
    "calibrate_threshold",
    "classify_images",
    "cluster_faces",
    "detect_faces",
    "embed_images",
    "evaluate_cluster",
    "evaluate_gender",
    "evaluate_identity",
    "load_gallery",
    "rebuild_gallery",
    "load_image",
    "load_model",
    "match_probes",
    "read_results",
    "resolve_threshold",
    "verify",
]
