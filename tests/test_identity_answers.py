"""Identity answers: the false-match curve, decisions that follow the question, flip-averaged embeddings."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import facecli
from facecli.calibration import FalseMatchCurve, fit_curve, fpir_of, per_comparison_fmr
from facecli.card import ModelCard
from facecli.decision import DEFAULT_FMR, DEFAULT_FPIR, decide
from facecli.errors import FacecliError
from facecli.face.preprocess import Preprocessing, flip_average, to_tensor


def curve() -> FalseMatchCurve:
    rng = np.random.default_rng(0)
    impostor = rng.beta(2, 8, 400_000)  # different-person scores, most of them low
    return fit_curve(impostor, (0.5, 0.1, 1e-2, 1e-3, 1e-4), fitted_on="synthetic")


def card_with(c: FalseMatchCurve | None) -> ModelCard:
    return ModelCard("identity", "x", Preprocessing(), threshold=0.9, embedding_dim=4, false_match=c)


def test_the_curve_is_monotone_and_inverts():
    c = curve()
    scores = np.linspace(0, 1, 201)
    rates = [c.fmr(s) for s in scores]
    assert all(b <= a for a, b in zip(rates, rates[1:], strict=False))
    assert rates[0] == pytest.approx(1.0) and rates[-1] < c.lowest_fmr
    for f in (0.3, 0.05, 1e-3, 2e-4):
        assert c.fmr(c.score_at(f)) == pytest.approx(f, rel=1e-6)
    # below what was measured the curve goes on along its last slope, and a decision says it is extrapolated
    assert c.points[-1][0] < c.score_at(1e-6) < c.score_at(1e-9) <= 1.0
    assert c.note(1e-3) == "" and "extrapolated" in c.note(1e-6)
    assert "extrapolated" in decide(card_with(c), comparisons=1_000_000).source


def test_the_fitted_curve_says_what_share_of_pairs_reaches_each_score():
    rng = np.random.default_rng(1)
    impostor = rng.beta(2, 8, 200_000)
    c = fit_curve(impostor, (0.1, 1e-2, 1e-3))
    for s, f in c.points:
        assert (impostor >= s).mean() == pytest.approx(f, abs=1e-9)


def test_the_curve_round_trips_through_the_card_and_onnx_metadata_json():
    card = card_with(curve())
    again = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert again.false_match == card.false_match and again.false_match.fitted_on == "synthetic"
    with pytest.raises(ValueError, match="increase"):
        FalseMatchCurve(((0.5, 1e-2), (0.4, 1e-3)))
    with pytest.raises(ValueError):
        FalseMatchCurve(((0.5, 0.0), (0.6, 0.0)))


def test_one_to_one_and_one_to_many_decisions_at_the_same_score_differ_as_the_gallery_size_says():
    card = card_with(curve())
    one = decide(card)
    assert one.fmr == pytest.approx(DEFAULT_FMR, rel=1e-6) and one.fpir is None and "FMR" in one.source
    small, large = decide(card, comparisons=100), decide(card, comparisons=10_000)
    for d in (small, large):
        assert d.fpir == pytest.approx(DEFAULT_FPIR, rel=1e-3)
    # a stranger compared with more photos gets more chances: the threshold rises with the gallery
    assert one.threshold < small.threshold < large.threshold
    assert small.fmr == pytest.approx(per_comparison_fmr(DEFAULT_FPIR, 100), rel=1e-3)
    # one score, two questions: what it means follows the gallery's size
    s = small.threshold
    for n in (1, 100, 100_000):
        d = decide(card, threshold=s, comparisons=n)
        assert d.fmr == pytest.approx(small.fmr, rel=1e-6)
        assert d.fpir == pytest.approx(fpir_of(small.fmr, n)) and d.source == "given"
    assert decide(card, threshold=s, comparisons=100_000).fpir > 0.5 > decide(card, threshold=s, comparisons=100).fpir


def test_precedence_given_then_asked_rate_then_calibrated_then_default():
    card = card_with(curve())
    stored = (0.42, "calibrated on mine (maximum F1)")
    assert decide(card, threshold=0.3, fpir=0.1, comparisons=5, stored=stored).threshold == 0.3
    assert decide(card, fpir=0.1, comparisons=5, stored=stored).source.startswith("--fpir")
    assert decide(card, comparisons=5, stored=stored).threshold == 0.42
    assert decide(card, comparisons=5).source.startswith("default FPIR")
    # a model without a curve keeps its validation-tuned threshold
    assert decide(card_with(None), comparisons=5).threshold == 0.9
    for bad in (dict(fpir=0.01), dict(fmr=0.0), dict(fmr=1.5), dict(fmr=float("nan"))):
        with pytest.raises(FacecliError):
            decide(card, **bad)
    with pytest.raises(FacecliError, match="fpir"):
        decide(card, fmr=0.01, comparisons=3)


def test_flip_average_is_mirror_invariant_and_unit_length():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3 * 8 * 8, 16)).astype(np.float32)

    def net(x: np.ndarray) -> np.ndarray:  # a linear "network" that is not mirror-symmetric
        return x.reshape(len(x), -1) @ w

    x = rng.normal(size=(5, 3, 8, 8)).astype(np.float32)
    a, b = flip_average(net, x), flip_average(net, np.ascontiguousarray(x[..., ::-1]))
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(a, net(x) / np.linalg.norm(net(x), axis=1, keepdims=True), atol=1e-3)


def test_flip_parity_between_training_and_the_exported_model(identity_model):
    """Training's evaluation (PyTorch) and inference (the exported ONNX model through its card) compute the same
    flip-averaged embedding."""
    import torch
    from facecli.training.data import predict_batches
    from facecli.training.export import build_from_run

    run_dir, onnx_path = identity_model
    net, cfg = build_from_run(run_dir)
    m = facecli.load_model(onnx_path, "identity", device="cpu")
    spec = m.card.preprocessing.replace(flip=True)
    m.card = dataclasses.replace(m.card, preprocessing=spec)
    crops = np.random.default_rng(3).integers(0, 255, (6, spec.size, spec.size, 3), dtype=np.uint8)
    torch_emb = predict_batches(net, crops, spec, torch.device("cpu"))
    onnx_emb = m.run(to_tensor(crops, spec))
    np.testing.assert_allclose(onnx_emb, torch_emb, atol=2e-4)
    plain = predict_batches(net, crops, spec.replace(flip=False), torch.device("cpu"))
    assert np.abs(plain / np.linalg.norm(plain, axis=1, keepdims=True) - onnx_emb).max() > 1e-3


def test_shipped_identity_model_carries_flip_and_a_false_match_curve():
    card = facecli.load_model(None, "identity", device="cpu").card
    assert card.preprocessing.flip
    c = card.false_match
    assert c is not None and c.lowest_fmr <= 1e-5 and "held-out" in c.fitted_on
    # the design card's strict threshold stays strict: 0.8 lets few strangers into a gallery of hundreds
    assert fpir_of(c.fmr(0.8), 1000) <= 0.02


def test_dir_at_fpir_by_hand():
    from facecli.metrics import dir_at_fpir, verification_metrics

    truth = np.array(["a", "b", "c", "x"] + ["s"] * 100, dtype=object)
    pred = np.array(["a", "b", "z", "x"] + ["a"] * 100, dtype=object)
    best = np.r_[[0.9, 0.5, 0.95, 0.2], np.linspace(0.0, 0.6, 100)]
    known = np.r_[[True] * 4, [False] * 100]
    # 1 of 100 strangers may pass: the threshold sits on the second-best stranger (0.594): a and c score above
    # it, but c is named wrongly, so only a counts
    assert dir_at_fpir(truth, pred, best, known, 0.01) == pytest.approx(0.25)
    assert np.isnan(dir_at_fpir(truth, pred, best, known, 0.001))  # 100 strangers cannot measure 0.1%
    m = verification_metrics(np.array([0.9, 0.8]), np.linspace(0, 0.85, 100_000), 0.5)
    assert m["tar_at_far_1e-4"] == 0.5 and m["tar_at_far_1e-5"] == 0.5


def test_every_answer_says_which_threshold_applied_and_what_it_means(tmp_path, cli):
    """gallery build and info show match's operating point for the gallery; match summaries say where the
    threshold came from and the share of strangers it accepts; verify --json gives the false-match rates."""
    import cv2
    from skimage import data

    from tests.conftest import write

    face = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (256, 256))
    root = tmp_path / "people"
    write(root / "eileen" / "eileen_0001.png", face)
    write(root / "cat" / "cat_0001.png", cv2.resize(cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR), (256, 256)))
    g = tmp_path / "g"
    r = cli("gallery", "build", root, "-g", g)
    assert r.code == 0, r.err
    assert "default FPIR 1.00% for 2 gallery photos" in r.out + r.err
    info = cli("gallery", "info", g)
    assert "match default: threshold from" in info.out + info.err and "(FPIR)" in info.out + info.err
    probe = write(tmp_path / "p" / "mirror.png", cv2.flip(face, 1))
    r = cli("match", probe.parent, "-g", g, "--layout", "plain", "--fpir", "0.001", "--out", tmp_path / "m.csv")
    assert r.code == 0, r.err
    said = r.out + r.err
    assert "--fpir 0.10% for 2 gallery photos" in said and "strangers accepted for 2 gallery photos" in said
    assert cli("match", probe.parent, "-g", g, "--fpir", "2", "--out", tmp_path / "m2.csv").code == 2
    r = cli("verify", root / "eileen" / "eileen_0001.png", probe, "--json", "--fmr", "1e-4")
    v = json.loads(r.out)
    assert r.code == (0 if v["same"] else 1) and v["fmr"] == pytest.approx(1e-4, rel=1e-6)
    assert v["threshold_source"].startswith("--fmr 0.0001") and 0 < v["similarity_fmr"] <= 1
