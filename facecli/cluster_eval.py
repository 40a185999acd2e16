"""``facecli evaluate cluster``: how well faces are grouped by person on an identity-layout folder.

Every image of ``ROOT/<identity>/`` and its ``distortion/`` copies is clustered as ``facecli cluster`` would
(names hidden), then scored against the folders' identities: BCubed and pairwise precision, recall and F
(:func:`facecli.metrics.clustering_metrics`), clusters against people, and per distortion kind (BCubed
averaged over that kind's images, the clustering being the same). Each image is scored by its largest
face; other faces in an image (people in the background) are clustered but not scored, and counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facecli.metrics import clustering_metrics

SCORES = ("bcubed_precision", "bcubed_recall", "bcubed_f", "pairwise_precision", "pairwise_recall", "pairwise_f")


@dataclass
class ClusterEval:
    """The outcome of :func:`facecli.evaluate_cluster`: the cluster ``table`` with ``true_identity`` and
    ``distortion``, the overall ``metrics`` and the ``per_kind`` table."""

    table: pd.DataFrame
    metrics: dict[str, Any]
    per_kind: pd.DataFrame

    def summary_rows(self) -> list[tuple[str, Any]]:
        """Images scored, people, clusters, BCubed and pairwise figures, then BCubed F per distortion kind."""
        m = self.metrics
        rows: list[tuple[str, Any]] = [("images scored", m["n"]), ("people", m["people"]),
                                       ("clusters (singletons included)", m["clusters"]),
                                       ("clusters of two or more", m["clusters_of_two_or_more"])]
        rows += [(k.replace("_", " "), round(m[k], 4)) for k in SCORES]
        rows += [(f"BCubed F, {r.distortion} ({r.n})", round(r.bcubed_f, 4)) for r in self.per_kind.itertuples()]
        rows += [("other faces (not scored)", m["other_faces"]), ("files that failed", m["failed"]),
                 ("threshold", round(m["threshold"], 6)), ("threshold from", m["threshold_source"])]
        return rows

    def save(self, out_dir: str | os.PathLike, raw: bool = False) -> Path:
        """Write ``clusters.csv``, ``metrics.json`` and ``per_distortion.csv`` into ``out_dir``."""
        from facecli.atomic import write_json
        from facecli.outputs import write_csv

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_csv(out_dir / "clusters.csv", self.table, raw=raw)
        write_csv(out_dir / "per_distortion.csv", self.per_kind, raw=raw)
        write_json(out_dir / "metrics.json", self.metrics)
        return out_dir


def score_clusters(table: pd.DataFrame, data: str, decision: Any) -> ClusterEval:
    """Score a cluster table that has ``true_identity`` and ``distortion`` (clean photos: "clean")."""
    failed = int((table["error"] != "").sum())
    scored = table[(table["error"] == "") & (table["face"] == 0)]
    m = clustering_metrics(scored["true_identity"], scored["cluster"])
    per_item_p, per_item_r = m.pop("_precision"), m.pop("_recall")
    kinds = scored["distortion"].to_numpy()
    rows = []
    for kind in sorted(set(kinds), key=lambda k: (k != "clean", k)):
        sel = kinds == kind
        p, r = float(per_item_p[sel].mean()), float(per_item_r[sel].mean())
        rows.append({"distortion": kind, "n": int(sel.sum()), "bcubed_precision": p, "bcubed_recall": r,
                     "bcubed_f": 2 * p * r / (p + r) if p + r else 0.0})
    sizes = scored.drop_duplicates("cluster")["cluster_size"]
    m.update(data=data, protocol="all images of the folder clustered together, each scored by its largest face",
             clusters_of_two_or_more=int((pd.to_numeric(sizes, errors="coerce") > 1).sum()),
             other_faces=int(((table["error"] == "") & (table["face"] != 0)).sum()), failed=failed,
             threshold=decision.threshold, threshold_source=decision.source, fmr=decision.fmr)
    return ClusterEval(table, m, pd.DataFrame(rows))


def labelled_inputs(root: Path, exclude: tuple[str, ...] = ()) -> tuple[list[Any], list[str], list[str], list[str]]:
    """The images of an identity-layout folder, minus the distortion kinds in ``exclude``: (paths, names
    relative to ``root``, identities, distortion kinds with "clean" for clean photos)."""
    from facecli.scan import rel, scan_identity_folder

    items = [it for it in scan_identity_folder(root) if (it.distortion or "clean") not in exclude]
    return ([it.path for it in items], [rel(Path(os.fspath(it.path)), root) for it in items],
            [it.identity for it in items], [it.distortion or "clean" for it in items])


def per_row(values: list[str], names: list[str], table: pd.DataFrame) -> np.ndarray:
    """``values`` (one per input) spread onto the table's rows by path."""
    by_name = dict(zip(names, values, strict=True))
    return np.array([by_name.get(p, "") for p in table["path"]], dtype=object)
