"""What each command reports in its summary table: rows of (name, value) computed from its results.

The CLI only renders these rows (:func:`facecli.report.metric_table`); the API returns the same figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from facecli.gallery import recorded_sources
from facecli.restore import RESTORE_OFF, UNTOUCHED

Rows = list[tuple[str, Any]]


def face_status_rows(ok: pd.DataFrame) -> Rows:
    """Faces detected, faces placed by the fallback, and images with no face (when detection ran)."""
    if "face_status" not in ok or not (ok["face_status"].isin(["detected", "fallback", "not_found"])).any():
        return []
    st = ok["face_status"]
    return [("faces detected", int((st == "detected").sum())),
            ("faces placed by the fallback (degraded image)", int((st == "fallback").sum())),
            ("images with no face found (no label)", int(ok[st == "not_found"]["path"].nunique()))]


def failed_inputs(table: pd.DataFrame) -> int:
    """Rows whose input could not be read."""
    return int((table["error"] != "").sum()) if "error" in table else 0


def all_failed(table: pd.DataFrame) -> bool:
    """True when there was input and every one of it failed: the command then exits with status 1."""
    return len(table) > 0 and failed_inputs(table) == len(table)


def classify_rows(df: pd.DataFrame, n_images: int, labels: tuple[str, ...] = ("male", "female")) -> Rows:
    """Images, faces, counts per label, face status counts, frame evidence and restorations, and files that
    failed."""
    ok = df[df["error"] == ""]
    rows: Rows = [("images", n_images), ("rows (faces)", len(ok))]
    rows += [(f"label {lab}", int((ok["label"] == lab).sum())) for lab in labels]
    rows += face_status_rows(ok)
    rows += restored_rows(ok)
    if "evidence" in ok and (ok["evidence"] == "face+frame").any():
        rows.append(("washed-out faces with frame evidence fused", int((ok["evidence"] == "face+frame").sum())))
    rows.append(("files that failed", failed_inputs(df)))
    return rows


def restored_rows(ok: pd.DataFrame) -> Rows:
    """How many rows' images were denoised or derained."""
    import pandas as pd
    counts = ok["restored"].value_counts() if "restored" in ok else pd.Series(dtype=int)
    return [(f"restored: {k}", int(n)) for k, n in counts.items() if k not in (UNTOUCHED, RESTORE_OFF, "")]


def match_rows(table: pd.DataFrame, decision: Rows, gallery_evidence: str = "face") -> Rows:
    """Probes, accepted, unknown, what decided the accepted ones, face status and restoration counts, files that
    failed, the gallery's evidence, and the ``decision`` rows (the threshold used, its source and what it means:
    :meth:`facecli.decision.Decision.rows`)."""
    import pandas as pd
    ok = table[table["error"] == ""]
    accepted = ok["accepted"].astype(bool) if "accepted" in ok else pd.Series([], dtype=bool)
    decided = ok.loc[accepted, "evidence"].value_counts() if "evidence" in ok else pd.Series(dtype=int)
    return [("probes", len(table)), ("accepted", int(accepted.sum())), ("unknown", int((~accepted).sum())),
            *[(f"accepted on {k} evidence", int(decided.get(k, 0))) for k in ("face", "photo", "both")
              if decided.get(k, 0)],
            *photo_nearest_rows(ok),
            *face_status_rows(ok), *restored_rows(ok),
            ("files that failed", failed_inputs(table)), ("gallery evidence", gallery_evidence), *decision]


def photo_nearest_rows(ok: pd.DataFrame) -> Rows:
    """How many probes whose face is gone were named by their nearest gallery photos (evidence
    ``photo_nearest``), when any were."""
    n = int((ok["evidence"] == "photo_nearest").sum()) if "evidence" in ok else 0
    return [("faces gone, named by the nearest gallery photo", n)] if n else []


def streamed_rows(done: Any) -> Rows:
    """A streamed run's summary (:class:`facecli.batch.Streamed`): its merged counts, and for a resumed run
    how many inputs the interrupted run had already done."""
    rows: Rows = [("images", done.images), *[(k, v) for k, v in done.summary if k != "images"]]
    if done.skipped:
        rows.append(("skipped (done by the interrupted run)", done.skipped))
    return rows


def gallery_rows(report: Any, gallery: Any, decision: Rows = ()) -> Rows:
    """What a gallery build or add put in, what the gallery now holds, and its default operating point
    (``decision``: :meth:`facecli.decision.Decision.rows`)."""
    return [("identities added", report.identities), ("images embedded", report.images),
            ("identities in gallery", len(gallery.identities)), ("files that failed", len(report.failures)),
            ("identities skipped (no usable clean image)", len(report.skipped_identities)),
            ("photos without a face (photo evidence only)", report.without_face),
            ("evidence", gallery.evidence), *decision]


def gallery_info_rows(gallery: Any, decision: Rows = ()) -> Rows:
    """What a gallery holds: identities, images, model, preprocessing, the stored threshold, dates, and the
    operating point ``match`` takes by default (``decision``, when the model could be read)."""
    meta = gallery.meta
    counts = meta.get("image_counts", {})
    model = meta.get("model", {})
    return [("identities", len(gallery.identities)), ("vectors", len(gallery.rows)), ("images", sum(counts.values())),
            ("one vector per image", bool(meta.get("per_image"))), ("dimension", gallery.dim),
            ("index", meta.get("index")), ("evidence", gallery.evidence),
            ("photos with photo evidence", 0 if gallery.photos is None else len(gallery.photos.rows)),
            ("photo matcher", None if gallery.photos is None else gallery.photos.model.get("path")),
            ("scores", "cosine" if meta.get("score_scale") is None else "score (model's scale)"),
            ("stored threshold", gallery.threshold), ("stored threshold source", meta.get("threshold_source")),
            *[(f"match default: {k}", v) for k, v in decision], ("model", model.get("path")),
            ("model sha256", str(model.get("sha256"))[:16]), ("backbone", model.get("backbone")),
            ("input size", model.get("preprocessing", {}).get("size")), ("created", meta.get("created")),
            ("updated", meta.get("updated")), ("built from", meta.get("source")),
            ("folders gallery rebuild re-reads", "; ".join(s["root"] for s in recorded_sources(meta)) or None)]


def gender_rows(m: dict[str, Any]) -> Rows:
    """Gender metrics: accuracy, female precision/recall/F1, balanced accuracy, ROC AUC, threshold."""
    return [("accuracy", m["accuracy"]), ("precision (female)", m["precision"]), ("recall (female)", m["recall"]),
            ("F1 (female)", m["f1"]), ("balanced accuracy", m["balanced_accuracy"]), ("ROC AUC", m["roc_auc"]),
            ("threshold", m["threshold"])]


def gender_title(m: dict[str, Any], what: str) -> str:
    return f"gender: {what} ({m['n']} images: {m['n_male']} male, {m['n_female']} female)"


def open_set_note(m: dict[str, Any]) -> str:
    """A sentence saying how to read a match report whose probes are (partly) not in the gallery."""
    if m.get("probes_in_gallery") == 0:
        return ("open-set test: no probe identity is in the gallery, so top-1 and macro-F1 do not apply; "
                "FPIR is the share of probes wrongly accepted, and every rejection is correct.")
    if m.get("probes_open_set"):
        return f"{m['probes_open_set']} probes have identities not in the gallery (open set)."
    return ""


def cluster_rows(table: pd.DataFrame, n_images: int, decision: Rows = ()) -> Rows:
    """Images; faces detected, washed out, images without a face; clusters of two or more and what is in them;
    singletons; the five largest clusters with their names; rows joined by photo evidence; files that failed;
    and the linkage threshold with what it means (``decision``)."""
    ok = table[table["error"] == ""]
    clustered = ok[ok["cluster"].notna()]
    sizes = clustered.drop_duplicates("cluster").sort_values("cluster").set_index("cluster")
    groups = sizes[sizes["cluster_size"] > 1]
    status = ok["face_status"].value_counts()
    rows: Rows = [("images", n_images), ("faces detected", int(status.get("detected", 0) + status.get("off", 0))),
                  ("washed-out faces (fallback)", int(status.get("fallback", 0))),
                  ("images without a face", int(status.get("not_found", 0))),
                  ("clusters (two or more)", len(groups)),
                  ("rows in those clusters", int(groups["cluster_size"].sum()) if len(groups) else 0),
                  ("singletons (joined no one)", int((sizes["cluster_size"] == 1).sum()))]
    rows += [(f"cluster {int(c)}: {r['name']}", int(r["cluster_size"])) for c, r in groups.head(5).iterrows()]
    photo = int((clustered["evidence"] == "photo").sum())
    if photo:
        rows.append(("joined by photo evidence (washed-out copies)", photo))
    return [*rows, ("files that failed", failed_inputs(table)), *decision]
