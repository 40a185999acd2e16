"""Library units users rely on: preprocessing, atomic writes, gallery index, metrics, losses, weights."""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # these unit tests need the training stack (facecli[train])
pytestmark = pytest.mark.train

from facecli.errors import FacecliError  # noqa: E402


def test_preprocessing_roundtrip_and_tensor():
    from facecli.face.preprocess import Preprocessing, to_tensor

    spec = Preprocessing(size=16, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0), colour="RGB")
    assert Preprocessing.from_dict(spec.to_dict()) == spec
    bgr = np.zeros((1, 16, 16, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    x = to_tensor(bgr, spec)
    assert x.shape == (1, 3, 16, 16) and x.dtype == np.float32
    # RGB order: channel 2 is blue = 1.0 -> (1 - 0) / 1; channel 0 is red = 0 -> (0 - 0.5) / 0.5
    assert np.allclose(x[0, 2], 1.0) and np.allclose(x[0, 0], -1.0) and np.allclose(x[0, 1], -1.0)
    with pytest.raises(ValueError):
        Preprocessing.from_dict({"colour": "XYZ"})


def test_centre_crop_and_face_box_crop():
    from facecli.face.preprocess import Preprocessing, crop_face

    img = np.zeros((100, 100, 3), np.uint8)
    img[40:60, 40:60] = 255
    out = crop_face(img, Preprocessing(size=20, crop=0.2))  # centred 20x20 = the white square
    assert out.min() == 255
    box_out = crop_face(img, Preprocessing(size=20, face_margin=1.0), box=(0, 0, 20, 20))  # black corner
    assert box_out.max() == 0
    edge = crop_face(img, Preprocessing(size=10, face_margin=2.0), box=(90, 90, 10, 10))  # padded past the edge
    assert edge.shape == (10, 10, 3)


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path):
    from facecli.atomic import atomic_path, write_text

    target = tmp_path / "out.csv"
    write_text(target, "old\n")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half a fi")
        raise KeyboardInterrupt
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_gallery_save_load_search_and_upsert(tmp_path):
    from facecli.gallery import Gallery, build_templates

    rng = np.random.default_rng(0)
    emb = rng.standard_normal((6, 16)).astype(np.float32)
    names, templates, counts = build_templates(emb, ["a", "a", "b", "b", "b", "c"])
    assert names == ["a", "b", "c"] and counts == [2, 3, 1]
    manual = emb[:2] / np.linalg.norm(emb[:2], axis=1, keepdims=True)
    manual = manual.mean(0)
    assert np.allclose(templates[0], manual / np.linalg.norm(manual), atol=1e-6)
    g = Gallery.create(names, templates, dict(zip(names, counts, strict=True)), {"sha256": "x"}, 0.4)
    g.save(tmp_path / "g")
    g2 = Gallery.load(tmp_path / "g")
    top, sims = g2.search(templates[[2]], k=2)
    assert top[0][0] == "c" and sims[0, 0] == pytest.approx(1.0, abs=1e-5)
    added, replaced = g2.upsert(["c", "d"], rng.standard_normal((2, 16)), {"c": 1, "d": 1})
    assert (added, replaced) == (1, 1) and len(g2.identities) == 4
    with pytest.raises(FacecliError, match="another model"):
        g2.check_model("y", "m.onnx")


def test_large_gallery_uses_approximate_index(monkeypatch):
    import faiss

    from facecli import gallery as gmod

    monkeypatch.setattr(gmod, "APPROX_ABOVE", 500)
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((2000, 32)).astype(np.float32)
    names = [f"id{i}" for i in range(2000)]
    g = gmod.Gallery.create(names, vecs, {n: 1 for n in names}, {}, 0.5)
    assert isinstance(g.index(), faiss.IndexHNSWFlat)
    top, _ = g.search(vecs[:50] + 0.01 * rng.standard_normal((50, 32)).astype(np.float32), k=1)
    assert sum(t[0] == names[i] for i, t in enumerate(top)) >= 48


def test_identification_metrics_by_hand():
    from facecli.metrics import identification_metrics

    m = identification_metrics(true_ids=["a", "a", "b", "x", "y"], pred_ids=["a", "b", "b", "a", "b"],
                               best_sim=[0.9, 0.6, 0.4, 0.7, 0.2], in_gallery=[True, True, True, False, False],
                               threshold=0.5)
    assert m["top1_accuracy"] == pytest.approx(2 / 3)
    assert m["detection_identification_rate"] == pytest.approx(1 / 3)  # only the first is right and accepted
    assert m["fpir"] == pytest.approx(0.5)  # x accepted wrongly, y rejected
    assert m["open_set_accuracy"] == pytest.approx(2 / 5)  # first probe, and y's rejection
    # macro-F1 over a and b: a: P=1, R=.5 -> 2/3; b: P=.5, R=1 -> 2/3
    assert m["macro_f1"] == pytest.approx(2 / 3)


def test_tar_at_far_and_threshold_choice():
    from facecli.calibrate import choose_threshold
    from facecli.metrics import tar_at_far, verification_metrics

    impostor = np.linspace(0, 0.5, 1000)
    genuine = np.r_[np.full(90, 0.9), np.full(10, 0.3)]
    assert tar_at_far(genuine, impostor, 1e-3) == pytest.approx(0.9)
    t = choose_threshold(genuine, impostor, "far", far=0.01)
    assert verification_metrics(genuine, impostor, t)["far"] <= 0.01
    assert choose_threshold(genuine, impostor, "f1") > 0.5


def test_gender_threshold_tuning():
    from facecli.metrics import tune_threshold

    y = [0, 0, 0, 1, 1]
    p = [0.1, 0.2, 0.6, 0.7, 0.9]
    t, f1 = tune_threshold(y, p, "f1")
    assert f1 == pytest.approx(1.0) and t == pytest.approx(0.65)  # halfway, not on a sample
    t, _ = tune_threshold(y, p, "balanced_accuracy")
    assert t == pytest.approx(0.65)
    # a sample at the edge keeps its side when its score moves by float noise (PyTorch vs ONNX)
    y, p = [0, 0, 1, 1], [0.2, 0.5, 0.881624, 0.95]
    t, f1 = tune_threshold(y, p, "f1")
    assert f1 == pytest.approx(1.0) and 0.5 < t < 0.881624 - 1e-3


def test_losses_behave():
    from facecli.training.losses import ArcFaceLoss, BatchHardTripletLoss, BinaryFocalLoss

    torch.manual_seed(0)
    arc = ArcFaceLoss(8, 3)
    labels = torch.tensor([0, 1, 2])
    good = torch.nn.functional.normalize(arc.weight.detach()) * 5
    bad = torch.roll(good, 1, 0)
    assert arc(good, labels) < arc(bad, labels)
    trip = BatchHardTripletLoss(0.3)
    e = torch.tensor([[1.0, 0], [1.0, 0.01], [0, 1.0], [0.01, 1.0]])
    assert trip(e, torch.tensor([0, 0, 1, 1])) == 0
    assert trip(e, torch.tensor([0, 1, 0, 1])) > 0
    focal = BinaryFocalLoss()
    assert focal(torch.tensor([5.0]), torch.tensor([1])) < focal(torch.tensor([-5.0]), torch.tensor([1]))


def test_hub_weights_fail_fast_offline(monkeypatch):
    from facecli.training.models import create_backbone

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.time()
    with pytest.raises(FacecliError, match="offline"):
        create_backbone("test_efficientnet", "hub")
    assert time.time() - t < 5


def test_packaged_imagenet_weights_load():
    from facecli.training.models import create_backbone

    a = create_backbone("tf_efficientnet_lite0", "auto")
    b = create_backbone("tf_efficientnet_lite0", "none")
    assert not torch.equal(a.conv_stem.weight, b.conv_stem.weight)
    assert a(torch.zeros(1, 3, 64, 64)).shape == (1, 1280)


def test_checkpoint_pretrained_loads_backbone(tmp_path):
    from facecli.training.models import create_model
    from safetensors.torch import save_file

    src = create_model("gender", "test_efficientnet", "none")
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "w.safetensors"))
    dst = create_model("identity", "test_efficientnet", str(tmp_path / "w.safetensors"), embedding_dim=8)
    assert torch.equal(src.backbone.conv_stem.weight, dst.backbone.conv_stem.weight)
    with pytest.raises(FacecliError, match="not found"):
        create_model("gender", "test_efficientnet", str(tmp_path / "missing.pth"))


def test_verification_metrics_match_sklearn():
    from sklearn import metrics as skm

    from facecli.metrics import verification_metrics

    rng = np.random.default_rng(0)
    genuine, impostor = rng.normal(0.7, 0.15, 300), rng.normal(0.2, 0.15, 3000)
    m = verification_metrics(genuine, impostor, 0.5)
    y = np.r_[np.ones(300), np.zeros(3000)]
    s = np.r_[genuine, impostor]
    yhat = (s >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, yhat))
    assert m["precision"] == pytest.approx(skm.precision_score(y, yhat))
    assert m["recall"] == pytest.approx(skm.recall_score(y, yhat))
    assert m["f1"] == pytest.approx(skm.f1_score(y, yhat))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert m["far"] == pytest.approx((impostor >= 0.5).mean())


def test_per_image_similarity_is_the_best_photo_of_each_identity():
    from facecli.gallery import Gallery

    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((7, 8)).astype(np.float32)
    rows = ["b", "a", "b", "c", "a", "a", "c"]
    g = Gallery.create(rows, vecs, {"a": 3, "b": 2, "c": 2}, {}, 0.5, per_image=True)
    q = rng.standard_normal((4, 8)).astype(np.float32)
    names, sim = g.similarity_matrix(q)
    assert names == ["b", "a", "c"]
    full = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ g.vectors.T
    for j, name in enumerate(names):
        cols = [i for i, r in enumerate(rows) if r == name]
        np.testing.assert_allclose(sim[:, j], full[:, cols].max(1), rtol=1e-6)
    top, best = g.search(q, k=3)
    np.testing.assert_allclose(best[:, 0], sim.max(1), rtol=1e-5)
    assert [t[0] for t in top] == [names[i] for i in sim.argmax(1)]


def test_per_image_search_returns_k_distinct_identities_despite_a_crowd():
    from facecli.gallery import Gallery

    rng = np.random.default_rng(5)
    crowd = rng.normal(0, 0.01, (100, 16)).astype(np.float32) + 1.0  # 100 near-identical photos of one person
    others = rng.standard_normal((4, 16)).astype(np.float32)
    rows = ["crowd"] * 100 + ["p1", "p2", "p3", "p4"]
    g = Gallery.create(rows, np.vstack([crowd, others]), {}, {}, 0.5, per_image=True)
    top, sims = g.search(np.ones((1, 16), np.float32), k=5)
    assert top[0][0] == "crowd" and sorted(top[0]) == ["crowd", "p1", "p2", "p3", "p4"]
    assert np.all(np.diff(sims[0]) <= 1e-6)


def test_same_padding_folds_into_convs_with_identical_outputs(tmp_path):
    import warnings

    import onnx
    import onnxruntime as ort
    from facecli.training.export import constant_folded, fold_pads_into_convs, freeze_same_padding
    from facecli.training.models import create_backbone

    net = create_backbone("tf_efficientnet_lite0", "none").eval()  # TF 'same' padding at stride 2
    assert freeze_same_padding(net, 64) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(1, 3, 64, 64),), str(tmp_path / "m.onnx"), input_names=["input"],
                          dynamic_axes={"input": {0: "batch"}}, opset_version=17, dynamo=False)
    proto = constant_folded(onnx.load(str(tmp_path / "m.onnx")))
    before = proto.SerializeToString()
    assert sum(n.op_type == "Pad" for n in proto.graph.node) == 5
    assert fold_pads_into_convs(proto) == 5
    assert not [n for n in proto.graph.node if n.op_type == "Pad"]
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    a = ort.InferenceSession(before, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    b = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.inference_mode():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(b, a, atol=1e-5)
    np.testing.assert_allclose(b, ref, atol=1e-4)


def test_sun_glare_washes_out_the_centre_not_the_corners():
    from facecli.training.augment import SunGlare

    img = np.full((64, 64, 3), 40, np.uint8)
    out = SunGlare(centre_roi=(0.5, 0.3, 0.5, 0.3), radius=(0.5, 0.5), strength=(1.5, 1.5), falloff=(1, 1),
                   p=1)(image=img)["image"]
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert (out[19, 32] == 255).all()  # the centre is white
    assert (out[63, 0] == 40).all()  # a far corner is untouched
    assert out[19, 32:].astype(int).sum(1).tolist() == sorted(out[19, 32:].astype(int).sum(1).tolist(), reverse=True)


def test_init_from_run_loads_the_whole_embedder_and_class_means(tmp_path):
    from facecli.training.models import create_model
    from facecli.training.train_identity import class_means, init_from_run
    from safetensors.torch import save_file

    src = create_model("identity", "test_efficientnet", "none", embedding_dim=8)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "model.safetensors"))
    dst = init_from_run(tmp_path, "test_efficientnet", 8)
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k
    with pytest.raises(FacecliError, match="does not fit"):
        init_from_run(tmp_path, "test_efficientnet", 16)
    with pytest.raises(FacecliError, match="not found"):
        init_from_run(tmp_path / "nowhere", "test_efficientnet", 8)
    emb = np.array([[3.0, 0], [1, 0], [0, 2], [0, 5]], np.float32)
    np.testing.assert_allclose(class_means(emb, [0, 0, 1, 1], 2), [[1, 0], [0, 1]])


def test_augmentation_repeats_with_the_same_seed_in_the_loader():
    from facecli.training.augment import train_transform
    from facecli.training.data import CropDataset
    from facecli.training.loop import worker_init
    from torch.utils.data import DataLoader

    from facecli.face.preprocess import Preprocessing

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (12, 48, 48, 3), dtype=np.uint8)
    spec = Preprocessing(size=48, mean=(0.5,) * 3, std=(0.5,) * 3)

    def batches(seed: int, workers: int) -> list[torch.Tensor]:
        ds = CropDataset(crops, list(range(12)), spec, train_transform(48, degrade_p=1.0, seed=seed))
        loader = DataLoader(ds, batch_size=4, shuffle=True, num_workers=workers, worker_init_fn=worker_init,
                            generator=torch.Generator().manual_seed(seed))
        return [x for x, _ in loader]

    for workers in (0, 2):
        a, b = batches(0, workers), batches(0, workers)
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), workers
        assert not all(torch.equal(x, y) for x, y in zip(a, batches(1, workers), strict=True))


def test_cross_photo_split_alternates_photos_by_name():
    from pathlib import Path

    from facecli.protocols import cross_photo_split
    from facecli.scan import IdentityImage

    def img(ident, stem, kind=""):
        name = f"{stem}_{kind}" if kind else stem
        return IdentityImage(Path(f"{ident}/{name}.jpg"), ident, kind, stem)

    items = [img("a", "a_3"), img("a", "a_1"), img("a", "a_2"), img("a", "a_4"), img("b", "b_1"),
             img("a", "a_2", "foggy"), img("a", "a_1", "foggy"), img("a", "a_4", "noisy"), img("b", "b_1", "rainy")]
    gal, probes = cross_photo_split(items)
    # a: sorted a_1 a_2 a_3 a_4 -> gallery a_1, a_3; probes = distorted copies of a_2, a_4; b (one photo) stays a distractor
    assert sorted(items[i].path.name for i in gal) == ["a_1.jpg", "a_3.jpg", "b_1.jpg"]
    assert sorted(items[i].path.name for i in probes) == ["a_2_foggy.jpg", "a_4_noisy.jpg"]
    gal2, clean = cross_photo_split(items, clean_probes=True)
    assert gal2 == gal and sorted(items[i].path.name for i in clean) == ["a_2.jpg", "a_4.jpg"]


def test_gender_split_never_puts_one_person_on_both_sides():
    from pathlib import Path

    from facecli.splits import person_of, split_by_person

    rng = np.random.default_rng(0)
    paths, labels = [], []
    for k in range(40):
        label = int(k % 4 == 0)
        for n in range(1, int(rng.integers(1, 7)) + 1):  # 1 to 6 photos each, like Cameron_Diaz_0001.._0006
            paths.append(Path(f"{'female' if label else 'male'}/Person_{k}_{n:04d}.jpg"))
            labels.append(label)
    paths.append(Path("male/012_frontal.jpg"))
    labels.append(0)
    assert person_of(Path("Cameron_Diaz_0003.jpg")) == "Cameron_Diaz" and person_of(paths[-1]) == "012_frontal"
    tr, va, ytr, yva = split_by_person(paths, labels, 0.25, seed=3)
    assert not {person_of(p) for p in tr} & {person_of(p) for p in va}
    assert len(tr) + len(va) == len(paths) and 1 in yva and 0 in yva and 1 in ytr
    assert 0.1 < len(va) / len(paths) < 0.45
    assert split_by_person(paths, labels, 0.25, seed=3)[1] == va  # seeded


def _fit_options(tmp_path, **kw):
    from facecli.training.recipe import FitOptions

    return FitOptions(data=tmp_path, out=tmp_path / "run", **kw)


def test_fit_keeps_one_history_the_run_folder_and_the_best_weights(tmp_path):
    from facecli.training.loop import Fit, cosine_restarts, fit, supervised_step
    from facecli.training.run_dir import CURVES_PNG, HISTORY_CSV, WEIGHTS
    from rich.console import Console

    torch.manual_seed(0)
    x = torch.randn(64, 3, 4, 4)
    y = (x.mean(dim=(1, 2, 3)) > 0).float()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=True)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 1), torch.nn.Flatten(0))
    scores = iter([0.5, 0.9, 0.7, 0.6, 0.8])  # best at epoch 2, then two epochs without gain stop the run
    kept: list[torch.Tensor] = []

    def evaluate() -> dict[str, float]:
        kept.append(model[1].weight.detach().clone())
        return {"val_acc": next(scores)}

    opt = _fit_options(tmp_path, epochs=5, lr=1e-2)
    opt.out.mkdir()
    how = Fit(select_key="val_acc", schedule=cosine_restarts(2), patience=2, plot_keys=["val_acc"])
    history, best = fit(model, supervised_step(model, torch.nn.BCEWithLogitsLoss(), torch.device("cpu")), loader,
                        evaluate, opt, how, torch.device("cpu"), Console(quiet=True))
    assert best == 2 and [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert [r["best"] for r in history] == [True, True, False, False]
    assert all(np.isfinite(r["train_loss"]) for r in history)
    for name in (WEIGHTS, HISTORY_CSV, CURVES_PNG):
        assert (opt.out / name).is_file()
    import pandas as pd

    assert list(pd.read_csv(opt.out / HISTORY_CSV)["epoch"]) == [1, 2, 3, 4]
    assert torch.equal(model[1].weight.detach(), kept[1])  # the model ends with the best epoch's weights


def test_fit_with_a_custom_step_one_cycle_and_the_start_as_epoch_zero(tmp_path):
    from facecli.training.distill_identity import IndexBatches
    from facecli.training.loop import Fit, fit, one_cycle
    from facecli.training.losses import CosineDistillLoss
    from rich.console import Console

    torch.manual_seed(0)
    x = torch.randn(40, 8)
    target = torch.nn.functional.normalize(x @ torch.randn(8, 4), dim=1)
    model = torch.nn.Linear(8, 4)
    loss = CosineDistillLoss()

    def step(b: np.ndarray) -> tuple[torch.Tensor, int]:
        return loss(model(x[b]), target[b], torch.ones(len(b))), len(b)

    def evaluate() -> dict[str, float]:
        with torch.no_grad():
            return {"val_cos": float((torch.nn.functional.normalize(model(x), dim=1) * target).sum(1).mean())}

    opt = _fit_options(tmp_path, epochs=3, lr=0.05, weight_decay=0.0)
    opt.out.mkdir()
    how = Fit(select_key="val_cos", schedule=one_cycle(0.1), clip_grad=None, evaluate_first=True)
    history, best = fit(model, step, IndexBatches(40, 8, seed=0), evaluate, opt, how, torch.device("cpu"),
                        Console(quiet=True))
    assert [r["epoch"] for r in history] == [0, 1, 2, 3] and np.isnan(history[0]["train_loss"])
    assert history[-1]["val_cos"] > history[0]["val_cos"] and best >= 1
    assert len(IndexBatches(41, 8, seed=0)) == 6


def test_backbone_registry_carries_preprocessing_and_training_overrides_only_what_was_given(tmp_path):
    import timm
    from facecli.training.models import backbone_preprocessing
    from facecli.training.skeleton import TrainOptions, preprocessing_for

    dlib = backbone_preprocessing("dlib_resnet")
    assert (dlib.size, dlib.template, dlib.detect, dlib.colour) == (150, "dlib", "auto", "RGB")
    assert np.allclose(dlib.std, [256 / 255] * 3) and np.allclose(dlib.mean[0], 122.782 / 255)
    spec = preprocessing_for(TrainOptions(data=tmp_path, out=tmp_path, backbone="dlib_resnet"))
    assert spec == dlib  # nothing given: the backbone's own record
    spec = preprocessing_for(TrainOptions(data=tmp_path, out=tmp_path, backbone="dlib_resnet", size=112,
                                          align="none", detect="none"))
    assert (spec.size, spec.template, spec.detect) == (112, "none", "none") and spec.mean == dlib.mean
    cfg = timm.models.get_pretrained_cfg("tf_efficientnet_lite0")
    timm_spec = preprocessing_for(TrainOptions(data=tmp_path, out=tmp_path, align="arcface", crop=0.9))
    assert timm_spec.mean == tuple(cfg.mean) and timm_spec.std == tuple(cfg.std) and timm_spec.size == 112
    assert (timm_spec.template, timm_spec.detect, timm_spec.crop) == ("arcface", "auto", 0.9)


def test_recipe_command_line_is_built_from_the_options_dataclass(tmp_path):
    from facecli.training.distill_identity import DistillOptions
    from facecli.training.gender_head import GenderHeadOptions
    from facecli.training.mtcnn import MtcnnOptions
    from facecli.training.recipe import recipe_main

    opt = recipe_main(DistillOptions, lambda o: o, None, [str(tmp_path), "--epochs", "0", "--lr", "1e-4"])
    assert opt == DistillOptions(data=tmp_path, epochs=0, lr=1e-4)
    assert recipe_main(MtcnnOptions, lambda o: o, None, ["w.whl"]).out.name == "models"
    with pytest.raises(SystemExit):  # --backbone-weights is required
        recipe_main(GenderHeadOptions, lambda o: o, None, [str(tmp_path)])
    head = recipe_main(GenderHeadOptions, lambda o: o, None, [str(tmp_path), "--backbone-weights", "w", "--c", "2"])
    assert (head.backbone_weights, head.c, head.out.name) == ("w", 2.0, "gender_face")
