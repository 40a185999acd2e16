"""1:1 verification: are two photos the same person? The first photo becomes a one-person gallery (its face,
and its photo evidence when the photo matcher is installed) and the second is matched against it exactly
as ``match`` would, so the similarity, threshold and evidence mean what they mean there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from facecli.decision import Decision
from facecli.errors import FacecliError
from facecli.gallery import Gallery
from facecli.options import RunOptions
from facecli.pipeline import ImageInput
from facecli.protocols import rank
from facecli.recognise import PhotoCollector, embed_images, model_info, probe_evidence
from facecli.runtime import OnnxModel
from facecli.scan import IdentityImage, input_name


@dataclass
class Verdict:
    """The answer of :func:`facecli.verify`: ``same`` when ``similarity`` (a score on the model's scale)
    reaches ``threshold``; ``fmr``: the share of different-person pairs whose score reaches the threshold, and
    ``similarity_fmr`` the share that reaches this pair's similarity (None for a model without a false-match
    curve); ``evidence`` says what decided (face, photo or both); ``face_status`` of each."""

    same: bool
    similarity: float
    threshold: float
    threshold_source: str
    fmr: float | None
    similarity_fmr: float | None
    evidence: str
    a: str
    b: str
    face_status_a: str
    face_status_b: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary_rows(self) -> list[tuple[str, Any]]:
        rows = [("same person", self.same), ("similarity", round(self.similarity, 4)),
                ("threshold", round(self.threshold, 6)), ("threshold from", self.threshold_source)]
        if self.fmr is not None:
            rows.append(("different people accepted at the threshold (FMR)", f"{self.fmr:.1e}"))
        if self.similarity_fmr is not None:
            rows.append(("different people scoring this similarity or more", f"{self.similarity_fmr:.1e}"))
        return rows + [("evidence", self.evidence), ("face A", self.face_status_a), ("face B", self.face_status_b)]


def verify_pair(model: OnnxModel, a: ImageInput, b: ImageInput, decision: Decision, run: RunOptions,
                photo_model: OnnxModel | None = None) -> Verdict:
    """Whether ``a`` and ``b`` show the same person at ``decision``'s threshold (see the module docstring);
    FacecliError when either cannot be read."""
    quiet = RunOptions.of(run, on_total=None, on_progress=None)
    collect = PhotoCollector(photo_model) if photo_model is not None else None
    emb = embed_images(model, [a], quiet, extra=collect.inputs if collect else None,
                       on_batch=collect.batch if collect else None)
    if not emb.ok[0]:
        raise FacecliError(f"{input_name(a, 0)}: {emb.failures[0]}")
    if emb.face_status[0] == "not_found":
        raise FacecliError(f"no face found in {input_name(a, 0)}: verify compares faces (put the photo with the "
                           "clearer face first; a second photo without a face is decided by photo evidence only)")
    scale, threshold = model.card.score_scale, decision.threshold
    photos = collect.photo_set([IdentityImage(a, "A", "", "")], [0]) if collect else None
    g = Gallery.create(["A"], emb.vectors[:1], {"A": 1}, model_info(model), threshold, per_image=True,
                       score_scale=None if scale is None else scale.to_dict(), photos=photos)
    probe, okp, evidence = probe_evidence(model, g, [b], quiet, photo_model)
    if not len(okp):
        raise FacecliError(f"{input_name(b, 1)}: {probe.failures[0]}")
    _, sims, _, decided = rank(g, probe.vectors[okp], 1, exact=False, evidence=evidence, threshold=threshold)
    similarity, curve = float(sims[0][0]), model.card.false_match
    how = "none" if evidence.no_face and evidence.no_face[0] and decided[0] == "face" else decided[0]
    return Verdict(bool(similarity >= threshold), similarity, float(threshold), decision.source, decision.fmr,
                   None if curve is None else curve.fmr(similarity), how, input_name(a, 0),
                   input_name(b, 1), str(emb.face_status[0]), str(probe.face_status[0]))
