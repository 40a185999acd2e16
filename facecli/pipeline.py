"""The batch path shared by classify, gallery building, matching, evaluation and training.

scan -> decode -> assess and restore -> (detect and align) -> crop -> normalise -> batch -> model. Decoding,
restoring, cropping and normalising run in a small thread pool (OpenCV and NumPy release the GIL) one
batch ahead of the model, so the model rarely waits for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from facecli.decode import DecodeError, read_image, rgb_array_to_bgr
from facecli.face.detectors import Box, get_detector
from facecli.face.preprocess import Preprocessing, crop_face, to_tensor
from facecli.options import RunOptions
from facecli.restore import restore
from facecli.runtime import OnnxModel
from facecli.scan import Unlisted

# a crop's face_status: "off" (detection not asked for), the detector's "detected" or "fallback" (placed by
# its framing rule in a degraded image), or "not_found" (detection asked for, no face: the centred crop used)
FACE_OFF = "off"
FACE_NOT_FOUND = "not_found"


@dataclass
class Crop:
    """One model input cut from one image."""

    index: int  # position of the source image in the input list
    face: int  # 0 = largest face (or the whole-image crop)
    box: Box | None
    face_status: str
    pixels: np.ndarray  # (size, size, 3) BGR uint8
    tensor: np.ndarray | None = None  # (3, size, size) float32 model input, set by iter_prepared
    landmarks: np.ndarray | None = None  # (5, 2) x, y in source pixels when a face was found
    restored: str = ""  # what restoration did to the source image (facecli.restore: untouched, denoise, derain, off)
    extra: Any = None  # first crop of an image only: what run_model's ``extra`` made of the decoded image

    @property
    def has_face(self) -> bool:
        """False only when detection was asked for and no face was found."""
        return self.face_status != FACE_NOT_FOUND


ImageInput = str | os.PathLike | np.ndarray  # a file, or an RGB (or grayscale) uint8 array in memory


def load_input(item: ImageInput) -> np.ndarray:
    """The BGR uint8 image of a file path or an in-memory array; DecodeError when it is neither usable.

    Arrays are RGB (as from Pillow, scikit-image, matplotlib or :func:`facecli.load_image`), RGBA or
    grayscale, of dtype uint8.
    """
    if isinstance(item, np.ndarray):
        return rgb_array_to_bgr(item)
    if isinstance(item, Unlisted):
        raise DecodeError(item.error)
    if isinstance(item, str | os.PathLike):
        return read_image(item)
    raise DecodeError(f"not an image path or numpy array: {type(item).__name__}")


Extra = Callable[[np.ndarray], Any] | None  # called on each decoded image (BGR, before restoration)


def prepare_image(item: ImageInput, index: int, spec: Preprocessing, all_faces: bool = False,
                  extra: Extra = None) -> list[Crop]:
    """Decode one file (or take one array) and cut its model inputs: one crop, or one per face when
    ``all_faces``.

    With ``spec.detect`` other than "none", faces are detected (largest first) and cut as the model was trained:
    warped onto its landmark template, or a square around the box. When none is found the centred crop
    is used and the crop is marked ``not_found``. ``extra(image)``, when given, is kept with the first crop.
    Raises DecodeError for unreadable files and bad arrays.
    """
    img = load_input(item)
    crops = crops_from_array(img, index, spec, all_faces)
    if extra is not None:
        crops[0].extra = extra(img)
    return crops


def crops_from_array(img: np.ndarray, index: int, spec: Preprocessing, all_faces: bool = False) -> list[Crop]:
    """The crops of an already-decoded BGR image (see :func:`prepare_image`), restored first as ``spec.restore``
    says (:func:`facecli.restore.restore`)."""
    img, restored = restore(img, spec.restore)
    if spec.detect == "none":
        return [Crop(index, 0, None, FACE_OFF, crop_face(img, spec), restored=restored)]
    faces = get_detector(spec.detect).detect(img, largest_only=not all_faces)
    if not faces:
        return [Crop(index, 0, None, FACE_NOT_FOUND, crop_face(img, spec), restored=restored)]
    return [Crop(index, i, f.box, f.status, crop_face(img, spec, f.box, f.landmarks), landmarks=f.landmarks,
                 restored=restored) for i, f in enumerate(faces)]


@dataclass
class BatchResult:
    """Model outputs of every crop, and the images that failed."""

    crops: list[Crop]  # pixels dropped after inference to save memory
    outputs: np.ndarray  # (len(crops), ...) model outputs in crop order
    failures: dict[int, str]  # input index -> error message


def default_workers() -> int:
    """Decoder threads: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def iter_prepared(
    paths: Sequence[ImageInput],
    spec: Preprocessing,
    all_faces: bool = False,
    batch: int = 64,
    workers: int | None = None,
    tensors: bool = True,
    extra: Extra = None,
) -> Iterator[tuple[list[Crop], dict[int, str], int]]:
    """Yield (crops, failures, images done) batch by batch (``batch`` images each), decoding the next one in the
    background.

    With ``tensors`` (default) each crop also carries its normalised model input (``Crop.tensor``); with
    ``extra``, each image's first crop carries ``extra(decoded image)``.
    """

    def work(i: int) -> list[Crop] | str:
        try:
            crops = prepare_image(paths[i], i, spec, all_faces, extra)
            if tensors:
                for c in crops:
                    c.tensor = to_tensor(c.pixels, spec)[0]
            return crops
        except DecodeError as exc:
            return str(exc)
        except Exception as exc:  # never let one odd file stop a batch
            return f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        starts = list(range(0, len(paths), batch))

        def submit(s: int) -> list[Future]:
            return [pool.submit(work, i) for i in range(s, min(s + batch, len(paths)))]

        pending = submit(starts[0]) if starts else []
        for n, _ in enumerate(starts):
            nxt = submit(starts[n + 1]) if n + 1 < len(starts) else []
            crops: list[Crop] = []
            failures: dict[int, str] = {}
            for k, fut in enumerate(pending):
                res = fut.result()
                if isinstance(res, str):
                    failures[starts[n] + k] = res
                else:
                    crops += res
            yield crops, failures, len(pending)
            pending = nxt


def run_model(model: OnnxModel, paths: Sequence[ImageInput], run: RunOptions, *, all_faces: bool = False,
              extra: Extra = None, on_batch: Callable[[list[Crop], np.ndarray], None] | None = None) -> BatchResult:
    """Run ``model`` over image files or arrays; bad ones become ``failures`` while the batch goes on.

    ``run.detect`` and ``run.restore`` override the model's stored settings; progress goes to ``run.advance``
    after each batch of ``run.batch_size`` images. ``extra`` (see :func:`iter_prepared`) and ``on_batch(crops,
    outputs)``, called after each batch's inference, let a caller do more with each image while it is at hand
    (photo evidence); extras are dropped after ``on_batch``.
    """
    spec = run.spec_for(model.preprocessing)
    all_crops: list[Crop] = []
    outs: list[np.ndarray] = []
    failures: dict[int, str] = {}
    for crops, fails, done in iter_prepared(paths, spec, all_faces, batch=run.batch_size, workers=run.workers,
                                            extra=extra):
        failures.update(fails)
        if crops:
            outs.append(model.run(np.stack([c.tensor for c in crops])))
            if on_batch is not None:
                on_batch(crops, outs[-1])
            for c in crops:
                c.pixels, c.tensor, c.extra = np.empty(0, np.uint8), None, None
            all_crops += crops
        run.advance(done)
    if outs:
        outputs = np.concatenate(outs)
    else:
        outputs = np.zeros((0,) + tuple(d if isinstance(d, int) else 1 for d in _out_shape(model)[1:]), np.float32)
    return BatchResult(all_crops, outputs, failures)


def _out_shape(model: OnnxModel) -> list:
    return list(model.session.get_outputs()[0].shape)
