"""Weight averaging of a fine-tuned model with its starting weights (``facecli.training.soup``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import facecli
from facecli.errors import FacecliError
from facecli.runtime import METADATA_KEY

pytest.importorskip("torch")
from facecli.training.soup import SoupOptions, average_weights, soup  # noqa: E402


def shifted(proto: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    """The same graph with every float initialiser moved a little (another point of the same network)."""
    rng = np.random.default_rng(seed)
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    for k, init in enumerate(out.graph.initializer):
        a = numpy_helper.to_array(init)
        if a.dtype.kind == "f":
            moved = (a + 0.05 * rng.standard_normal(a.shape)).astype(a.dtype)
            out.graph.initializer[k].CopyFrom(numpy_helper.from_array(moved, init.name))
    return out


def floats(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}


def test_the_average_lies_between_the_two_models_weight_by_weight(identity_model, tmp_path):
    _, tuned_path = identity_model
    tuned = onnx.load(str(tuned_path))
    start = shifted(tuned, 0)
    start_path = tmp_path / "start.onnx"
    onnx.save(start, str(start_path))
    a, b = floats(tuned), floats(start)
    for weight in (0.0, 0.3, 1.0):
        got = floats(average_weights(tuned, start, weight))
        for name in a:
            np.testing.assert_allclose(got[name], weight * a[name] + (1 - weight) * b[name], rtol=1e-6, atol=1e-7)

    out = tmp_path / "soup.onnx"
    soup(SoupOptions(tuned=tuned_path, out=out, start=start_path, weight=0.5))
    card = json.loads(next(p.value for p in onnx.load(str(out)).metadata_props if p.key == METADATA_KEY))
    # its embeddings are new: nothing calibrated for the tuned model, and no gallery of it, carries over
    assert "false_match" not in card and "score_scale" not in card and not card.get("embeds_like")
    assert card["threshold"] is None and "calibrate_scores" in card["threshold_source"]
    assert "0.5 x" in card["metrics"]["weights"] and str(start_path) in card["metrics"]["weights"]
    model = facecli.load_model(out)
    assert model.card.task == "identity" and model.card.preprocessing == facecli.load_model(tuned_path).card.preprocessing
    size = model.card.preprocessing.size
    vec = model.run(np.random.default_rng(1).standard_normal((2, 3, size, size)).astype(np.float32))
    assert np.allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-4)


def test_two_different_graphs_or_a_weight_outside_0_1_are_refused(identity_model, gender_model, tmp_path):
    _, tuned_path = identity_model
    tuned = onnx.load(str(tuned_path))
    with pytest.raises(FacecliError, match="not the same graph"):
        average_weights(tuned, onnx.load(str(gender_model[1])), 0.5)
    with pytest.raises(FacecliError, match=r"\[0, 1\]"):
        average_weights(tuned, tuned, 1.5)
    out = tmp_path / "never.onnx"
    with pytest.raises(FacecliError):
        soup(SoupOptions(tuned=tuned_path, out=out, start=Path(gender_model[1]), weight=0.5))
    assert not out.exists()


def test_a_new_model_version_refuses_old_galleries_until_gallery_rebuild(identity_model, identity_data, tmp_path,
                                                                         cli):
    """A gallery records the folders it was built and added from; after a model update ``gallery rebuild``
    embeds them again with the new model, and the refusal's one line says so."""
    _, old_model = identity_model
    new_model = tmp_path / "new.onnx"
    tuned = onnx.load(str(old_model))
    onnx.save(average_weights(tuned, shifted(tuned, 1), 0.5), str(new_model))
    g = tmp_path / "g"
    facecli.build_gallery(identity_data / "train", old_model, out=g, photo=False)
    facecli.add_to_gallery(g, identity_data / "val", old_model)
    before = facecli.load_gallery(g)
    roots = [str((identity_data / d).resolve()) for d in ("train", "val")]
    assert [s["root"] for s in before.meta["sources"]] == roots
    from facecli.summary import gallery_info_rows

    assert dict(gallery_info_rows(before, []))["folders gallery rebuild re-reads"] == "; ".join(roots)

    probe = identity_data / "val" / "visitor_00" / "visitor_00_0001.jpg"
    with pytest.raises(FacecliError, match=f"gallery rebuild -g {g}"):
        facecli.match_probes([probe], g, new_model)
    res = cli("gallery", "rebuild", "-g", g, "--model", new_model)
    assert res.code == 0, res.err
    after = facecli.load_gallery(g)
    assert after.identities == before.identities and after.meta["sources"] == before.meta["sources"]
    assert after.meta["model"]["sha256"] != before.meta["model"]["sha256"]
    run = facecli.match_probes([probe], g, new_model)
    assert run.table.loc[0, "nearest"] == "visitor_00"
    with pytest.raises(FacecliError, match="another model"):
        facecli.match_probes([probe], g, old_model)


def test_gallery_rebuild_says_what_is_missing_in_one_line(identity_model, identity_data, tmp_path, cli):
    import shutil

    _, model = identity_model
    src = tmp_path / "photos"
    shutil.copytree(identity_data / "val", src)
    g = tmp_path / "g"
    facecli.build_gallery(src, model, out=g, photo=False)
    shutil.rmtree(src)
    res = cli("gallery", "rebuild", "-g", g, "--model", model)
    assert res.code == 2 and "not a folder any more" in res.err and len(res.err.strip().splitlines()) == 1
    assert facecli.load_gallery(g).identities  # the gallery is untouched
