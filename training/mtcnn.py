"""MTCNN's three networks in PyTorch, and their one-off conversion to the ONNX files facecli ships.

MTCNN (Zhang et al., 2016) finds faces with a cascade of three small CNNs: P-Net proposes windows over
an image pyramid, R-Net refines them on 24x24 crops and O-Net gives the final box, a face score and five
landmarks (eyes, nose tip, mouth corners) on 48x48 crops. The weights are the ones that ship inside the
``facenet-pytorch`` wheel (MIT licence; converted there from the authors' Caffe release). That package
pins an old torch, so it is never installed: this module reads its three state dicts straight from the
wheel (``torch.load(weights_only=True)``), exports each network to ONNX, checks the ONNX outputs against
PyTorch and writes ``mtcnn_pnet.onnx``, ``mtcnn_rnet.onnx``, ``mtcnn_onet.onnx``. Inference
(:mod:`facecli.detect`) needs only ONNX Runtime.

    pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/w
    python -m facecli.training.mtcnn /tmp/w/facenet_pytorch-2.6.0-py3-none-any.whl --out models
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn


class _Stage(nn.Module):
    """A cascade stage's trunk: ``conv{i}`` - ``prelu{i}`` (- ``pool{i}``, max, stride 2) for each (in, out,
    kernel, pool kernel or 0) of ``convs``, then optionally ``dense{n+1}`` - ``prelu{n+1}`` on the features
    flattened Caffe's way (W, H, C). The names are facenet-pytorch's, so its state dicts load strictly."""

    def __init__(self, convs: list[tuple[int, int, int, int]], dense: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.depth, self.dense = len(convs), dense is not None
        for i, (cin, cout, k, pool) in enumerate(convs, 1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, k))
            setattr(self, f"prelu{i}", nn.PReLU(cout))
            if pool:
                setattr(self, f"pool{i}", nn.MaxPool2d(pool, 2, ceil_mode=True))
        if dense is not None:
            setattr(self, f"dense{self.depth + 1}", nn.Linear(*dense))
            setattr(self, f"prelu{self.depth + 1}", nn.PReLU(dense[1]))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.depth + 1):
            x = getattr(self, f"prelu{i}")(getattr(self, f"conv{i}")(x))
            if hasattr(self, f"pool{i}"):
                x = getattr(self, f"pool{i}")(x)
        if self.dense:
            n = self.depth + 1
            x = getattr(self, f"prelu{n}")(getattr(self, f"dense{n}")(x.permute(0, 3, 2, 1).flatten(1)))
        return x


class PNet(_Stage):
    """Proposal network: fully convolutional, 12x12 receptive field, stride 2."""

    def __init__(self) -> None:
        super().__init__([(3, 10, 3, 2), (10, 16, 3, 0), (16, 32, 3, 0)])
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.trunk(x)
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]  # box offsets, face probability


class RNet(_Stage):
    """Refinement network on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__([(3, 28, 3, 3), (28, 48, 3, 3), (48, 64, 2, 0)], dense=(576, 128))
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.trunk(x)
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(_Stage):
    """Output network on 48x48 crops: box offsets, five landmarks (x1..x5, y1..y5 in [0, 1]) and score."""

    def __init__(self) -> None:
        super().__init__([(3, 32, 3, 3), (32, 64, 3, 3), (64, 64, 3, 2), (64, 128, 2, 0)], dense=(1152, 256))
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.trunk(x)
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


NETS = {"pnet": (PNet, ["boxes", "prob"]), "rnet": (RNet, ["boxes", "prob"]), "onet": (ONet, ["boxes", "points", "prob"])}
INPUT_SIDE = {"pnet": 12, "rnet": 24, "onet": 48}


def read_state_dicts(source: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The three state dicts from a facenet-pytorch wheel (or an unpacked ``facenet_pytorch/data`` folder)."""

    def load(raw: bytes) -> dict[str, torch.Tensor]:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)

    if source.is_file():
        with zipfile.ZipFile(source) as zf:
            return {n: load(zf.read(f"facenet_pytorch/data/{n}.pt")) for n in NETS}
    return {n: load((source / f"{n}.pt").read_bytes()) for n in NETS}


def build(name: str, state: dict[str, torch.Tensor]) -> nn.Module:
    """One network with its weights loaded (strictly: every tensor must match)."""
    net = NETS[name][0]()
    net.load_state_dict(state, strict=True)
    return net.eval()


def export_all(source: Path, out_dir: Path, check_atol: float = 1e-5) -> list[Path]:
    """Export the three networks to ``out_dir`` and check ONNX Runtime against PyTorch on random inputs."""
    import onnxruntime as ort

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, state in read_state_dicts(source).items():
        net = build(name, state)
        side = INPUT_SIDE[name]
        outputs = NETS[name][1]
        dummy = torch.randn(2, 3, side * 3 if name == "pnet" else side, side * 2 if name == "pnet" else side)
        axes = {"input": {0: "n", 2: "h", 3: "w"}} if name == "pnet" else {"input": {0: "n"}}
        axes.update({o: {0: "n"} for o in outputs})
        path = out_dir / f"mtcnn_{name}.onnx"
        torch.onnx.export(net, (dummy,), str(path), input_names=["input"], output_names=outputs,
                          dynamic_axes=axes, opset_version=17, dynamo=False)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = torch.randn(5, 3, 57 if name == "pnet" else side, 75 if name == "pnet" else side)
        with torch.no_grad():
            ref = [t.numpy() for t in net(x)]
        got = sess.run(None, {"input": x.numpy()})
        diff = max(float(np.abs(a - b).max()) for a, b in zip(ref, got, strict=True))
        if diff > check_atol:
            path.unlink()
            raise RuntimeError(f"{name}: ONNX differs from PyTorch by {diff:.2e}")
        print(f"{path}: max abs diff vs PyTorch {diff:.1e}")
        written.append(path)
    return written


@dataclass
class MtcnnOptions:
    """Options of the conversion (see ``--help``)."""

    source: Path = field(metadata={"help": "facenet-pytorch wheel, or its facenet_pytorch/data folder"})
    out: Path = Path("models")
    check_atol: float = 1e-5


def convert(opt: MtcnnOptions) -> list[Path]:
    """The recipe: :func:`export_all` of ``opt.source`` into ``opt.out``."""
    return export_all(opt.source, opt.out, opt.check_atol)


def main() -> None:
    from facecli.training.recipe import recipe_main

    recipe_main(MtcnnOptions, convert, __doc__)


if __name__ == "__main__":
    main()
