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

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn


class PNet(nn.Module):
    """Proposal network: fully convolutional, 12x12 receptive field, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]  # box offsets, face probability


class RNet(nn.Module):
    """Refinement network on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))  # Caffe's (W, H, C) flattening
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """Output network on 48x48 crops: box offsets, five landmarks (x1..x5, y1..y5 in [0, 1]) and score."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="facenet-pytorch wheel, or its facenet_pytorch/data folder")
    ap.add_argument("--out", type=Path, default=Path("models"))
    args = ap.parse_args()
    export_all(args.source, args.out)


if __name__ == "__main__":
    main()
