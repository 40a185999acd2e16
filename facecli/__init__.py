"""facecli: gender classification and distortion-robust face recognition from the command line.

The public, verb-named API mirrors the CLI::

    from facecli import load_model, classify_images, embed_images, build_gallery, match_probes
"""

from __future__ import annotations

__version__ = "0.1.0"

from facecli.errors import FacecliError  # noqa: E402

__all__ = ["FacecliError", "__version__"]
