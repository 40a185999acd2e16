"""dlib's face-recognition ResNet in PyTorch: registry entry, weight reading, parity with dlib, alignment."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # these unit tests need the training stack (facecli[train])
pytestmark = pytest.mark.train
from facecli.training.dlib_resnet import DlibResNet, _compact_int, _tensor_header, load_dlib_weights, normalise  # noqa: E402


def fake_dat(model: DlibResNet, rng: np.random.Generator) -> tuple[bytes, dict[str, np.ndarray]]:
    """A file laid out like dlib's: version strings and filler between the parameter tensors, input first."""
    parts, truth = [b"\x01\x0einput_rgb_image"], {}

    def tensor(values: np.ndarray, dims: tuple[int, ...]) -> None:
        parts.append(_compact_int(7) + b"\x01\x05con_4" + rng.bytes(5))  # unrelated bytes before each tensor
        parts.append(_tensor_header(*dims) + values.astype("<f4").tobytes())

    def conv(name: str, layer: torch.nn.Conv2d) -> None:
        w = rng.standard_normal(layer.weight.shape).astype(np.float32)
        b = rng.standard_normal(layer.weight.shape[0]).astype(np.float32)
        truth[name + ".weight"], truth[name + ".bias"] = w, b
        tensor(np.concatenate([w.ravel(), b]), (w.size + b.size, 1, 1, 1))

    def affine(name: str, c: int) -> None:
        g, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
        truth[name + ".gamma"], truth[name + ".beta"] = g, b
        tensor(np.concatenate([g, b]), (2 * c, 1, 1, 1))

    conv("conv0", model.conv0)
    affine("aff0", 32)
    for i, blk in enumerate(model.blocks):
        conv(f"blocks.{i}.conv1", blk.conv1)
        affine(f"blocks.{i}.aff1", blk.cout)
        conv(f"blocks.{i}.conv2", blk.conv2)
        affine(f"blocks.{i}.aff2", blk.cout)
    w = rng.standard_normal((256, 128)).astype(np.float32)
    truth["fc.weight"] = w.T
    parts.append(b"\x01\x04fc_2")
    tensor(w, (256, 128, 1, 1))
    return b"".join(parts), truth


def test_dlib_weights_are_read_into_the_right_layers(tmp_path):
    model = DlibResNet()
    data, truth = fake_dat(model, np.random.default_rng(0))
    (tmp_path / "net.dat").write_bytes(data)
    load_dlib_weights(model, tmp_path / "net.dat")
    state = model.state_dict()
    assert set(truth) == set(state)
    for k, v in truth.items():
        assert np.array_equal(state[k].numpy(), v), k


def test_a_file_of_another_network_is_refused(tmp_path):
    (tmp_path / "other.dat").write_bytes(b"\x01\x05con_4" + _tensor_header(10, 1, 1, 1) + bytes(40))
    with pytest.raises(ValueError, match="not dlib's face-recognition ResNet"):
        load_dlib_weights(DlibResNet(), tmp_path / "other.dat")


def test_registry_entry_is_a_128d_embedder():
    from facecli.training.models import InferenceWrapper, create_model

    from facecli.errors import FacecliError

    model = create_model("identity", "dlib_resnet", "none")
    x = torch.randn(2, 3, 150, 150)
    assert model(x).shape == (2, 128)
    emb = InferenceWrapper(model, "identity")(x)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    assert sum(p.numel() for p in model.parameters()) == 5_614_592  # every float in dlib's 22.5 MB file
    gender = create_model("gender", "dlib_resnet", "none")
    p = InferenceWrapper(gender, "gender")(x)
    assert p.shape == (2,) and bool(((p > 0) & (p < 1)).all())
    with pytest.raises(FacecliError):
        create_model("identity", "dlib_resnet", "none", embedding_dim=512)


def test_dlib_preprocessing_reproduces_dlibs_input_layer():
    from facecli.training.models import backbone_preprocessing

    from facecli.face.preprocess import to_tensor

    spec = backbone_preprocessing("dlib_resnet")
    chips_rgb = np.random.default_rng(1).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    ours = to_tensor(chips_rgb[..., ::-1].copy(), spec)  # facecli's crops are BGR
    assert np.allclose(ours, normalise(chips_rgb).numpy(), atol=1e-5)
    assert spec.template == "dlib" and spec.size == 150 and spec.detect == "auto"


@pytest.mark.skipif(importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None,
                    reason="needs dlib (pip install dlib-bin) and face-recognition-models (dlib's weights, 100 MB)")
def test_port_equals_dlib_on_the_same_chips():
    from facecli.training.dlib_resnet import dlib_reference_embeddings, pretrained_dlib_resnet
    from skimage import data

    rng = np.random.default_rng(0)
    face = np.ascontiguousarray(data.astronaut()[40:290, 110:360][::5, ::5])  # any 50x50 patch, upsampled
    chips = np.stack([rng.integers(0, 256, (150, 150, 3), dtype=np.uint8),
                      np.kron(face, np.ones((3, 3, 1), np.uint8))])
    with torch.no_grad():
        ours = pretrained_dlib_resnet()(normalise(chips)).numpy()
    assert np.abs(ours - dlib_reference_embeddings(chips)).max() < 1e-4


def test_open_set_threshold_accepts_at_most_the_asked_share():
    from pathlib import Path

    from facecli.training.distill_identity import open_set_threshold

    from facecli.scan import IdentityImage

    rng = np.random.default_rng(0)
    items, emb = [], []
    for p in range(60):
        centre = rng.standard_normal(16)
        for k, kind in enumerate(["", "blurred", "noisy"]):
            items.append(IdentityImage(Path(f"p{p}/{k}.jpg"), f"p{p:02d}", kind, "0"))
            emb.append(centre + 0.3 * rng.standard_normal(16))
    emb = np.asarray(emb, np.float32)
    thr, info = open_set_threshold(items, emb, far=0.05)
    assert info["open_set_probes"] == 180 and info["open_set_gallery_photos"] == 60
    assert 0.02 <= info["open_set_accepted_at_threshold"] <= 0.05
    # by hand: the best similarity of each image to the clean photos of the other 59 people
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    ids = np.array([it.identity for it in items])
    gal = np.flatnonzero([not it.distortion for it in items])
    sims = e @ e[gal].T
    sims[ids[:, None] == ids[gal][None, :]] = -1
    assert (sims.max(axis=1) >= thr).mean() == info["open_set_accepted_at_threshold"]
