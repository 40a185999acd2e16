"""facecli: gender classification and distortion-robust face recognition, from Python or the command line.

Every ``facecli`` command is one of these functions, which take folders, file paths and in-memory RGB
numpy arrays alike (see :mod:`facecli.api` for the conventions):

- models and images: :func:`load_model`, :func:`load_image`, :func:`detect_faces`
- gender: :func:`classify_images`, :func:`evaluate_gender`
- recognition: :func:`embed_images`, :func:`build_gallery`, :func:`add_to_gallery`, :func:`load_gallery`,
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
from pathlib import Path

__version__ = "0.3.0"

# In a source checkout the subpackages kept at the repository's top level (training/, models/) are found
# beside facecli/, so `facecli.training` and `facecli.models` resolve to the same files as in a wheel, which
# installs them inside facecli/ (pyproject.toml maps them).
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "training" / "__init__.py").is_file():
    __path__.append(str(_checkout))

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
    "load_image",
    "load_model",
    "match_probes",
    "read_results",
    "resolve_threshold",
    "verify",
]
