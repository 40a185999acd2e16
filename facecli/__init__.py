"""facecli: gender classification and distortion-robust face recognition, from Python or the command line.

Every ``facecli`` command is one of these functions, which take folders, file paths and in-memory RGB
numpy arrays alike (see :mod:`facecli.api` for the conventions):

- models and images: :func:`load_model`, :func:`load_image`, :func:`detect_faces`
- gender: :func:`classify_images`, :func:`evaluate_gender`
- recognition: :func:`embed_images`, :func:`build_gallery`, :func:`add_to_gallery`, :func:`load_gallery`,
  :func:`match_probes`, :func:`calibrate_threshold`, :func:`evaluate_identity`
- records: :class:`ModelCard` (what a model is and how to feed it), :class:`Preprocessing`,
  :class:`Gallery`; every bad value raises :class:`FacecliError` with a one-line message.

Example::

    import facecli

    img = facecli.load_image("photo.jpg")             # or any RGB uint8 array
    print(facecli.classify_images(img))              # label and p_female for each face
    gallery, _ = facecli.build_gallery("Task_B/train", out="gallery")
    run = facecli.match_probes("Task_B/val", gallery)
    print(run.table[["path", "identity", "similarity"]])

Training (``facecli[train]``) lives in :mod:`facecli.training`.
"""

from __future__ import annotations

__version__ = "0.2.0"

from facecli.api import (  # noqa: E402
    MatchRun,
    add_to_gallery,
    build_gallery,
    calibrate_threshold,
    classify_images,
    detect_faces,
    embed_images,
    evaluate_gender,
    evaluate_identity,
    load_gallery,
    load_image,
    load_model,
    match_probes,
)
from facecli.card import ModelCard, resolve_threshold  # noqa: E402
from facecli.errors import FacecliError  # noqa: E402
from facecli.gallery import Gallery  # noqa: E402
from facecli.preprocess import Preprocessing  # noqa: E402

__all__ = [
    "FacecliError",
    "Gallery",
    "MatchRun",
    "ModelCard",
    "Preprocessing",
    "__version__",
    "add_to_gallery",
    "build_gallery",
    "calibrate_threshold",
    "classify_images",
    "detect_faces",
    "embed_images",
    "evaluate_gender",
    "evaluate_identity",
    "load_gallery",
    "load_image",
    "load_model",
    "match_probes",
    "resolve_threshold",
]
