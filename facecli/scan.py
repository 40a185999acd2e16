"""Finding images on disk: any folder recursively, labelled gender folders, identity-layout folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from facecli.card import GENDER_LABELS
from facecli.errors import FacecliError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
DISTORTION_KINDS = ("blurred", "foggy", "lowlight", "noisy", "rainy", "resized", "sunny")


def is_image(path: Path) -> bool:
    """True when the file name has an image extension (jpg, jpeg, png, bmp, webp, tif, tiff; any case)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class Unlisted:
    """A folder a scan could not list (path too long, no permission, removed meanwhile). It stands among the
    scanned images so that the batch gives it an error row instead of silently dropping what it holds."""

    path: Path
    error: str

    def __fspath__(self) -> str:
        return os.fspath(self.path)


def iter_walk(root: Path) -> Iterator[Path | Unlisted]:
    """Every file below ``root`` whose name passes :func:`is_image` and is not hidden (hidden folders are
    skipped too), lazily, sorted within each folder (a folder's files, then its subfolders in name order); a
    folder that cannot be listed comes as an :class:`Unlisted`."""
    failed: list[Unlisted] = []

    def unlisted(exc: OSError) -> None:
        failed.append(Unlisted(Path(exc.filename or root), f"cannot list folder: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted):
        yield from failed
        failed.clear()
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not name.startswith(".") and is_image(p):
                yield p
    yield from failed


def walk_files(root: Path) -> list[Path | Unlisted]:
    """:func:`iter_walk` as a list."""
    return list(iter_walk(root))


def printable(name: str) -> str:
    """A file name as result rows carry it: bytes that are not UTF-8 (kept by Python as surrogates) become
    backslash escapes, so every output format can hold it (the file itself is still read by its real name)."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def rel(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` (POSIX separators), or as given when outside it."""
    if root is None:
        return printable(path.as_posix())
    try:
        return printable(path.relative_to(root).as_posix())
    except ValueError:
        return printable(path.as_posix())


def input_name(item: object, index: int, root: Path | None = None) -> str:
    """How a result row names its input: the path (relative to ``root``) or ``<array N>`` for arrays."""
    if isinstance(item, str | os.PathLike):
        return rel(Path(item), root)
    return f"<array {index}>"


def require_dir(folder: str | os.PathLike[str], what: str = "folder") -> Path:
    """Return ``folder`` as a Path, or raise a one-line FacecliError when it is missing or not a folder."""
    folder = Path(folder)
    if not folder.exists():
        raise FacecliError(f"{what} not found: {folder}")
    if not folder.is_dir():
        raise FacecliError(f"{what} is not a folder: {folder}")
    return folder


def scan_images(folder: str | os.PathLike[str]) -> list[Path | Unlisted]:
    """All image files below ``folder`` (recursive, sorted, hidden files and folders skipped); a subfolder
    that cannot be listed is kept as an :class:`Unlisted` (an error row, not a silent gap).

    Raises FacecliError when the folder is missing or holds no image.
    """
    root = require_dir(folder)
    found = walk_files(root)
    if not found:
        raise FacecliError(f"no images found in {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return found


# ---------------------------------------------------------------- gender (Task A) layout


def resolve_gender_split(data: str | os.PathLike[str], split: str) -> Path | None:
    """Find the ``male/``+``female/`` folder for ``split`` ('train' or 'val') inside a Task A folder.

    ``DATA/<split>/{male,female}`` is used when present; for 'train', ``DATA/{male,female}`` also works.
    Returns None when there is no such split.
    """
    root = require_dir(data, "data folder")
    cand = root / split
    if _has_gender_dirs(cand):
        return cand
    if split == "train" and _has_gender_dirs(root):
        return root
    return None


def _has_gender_dirs(folder: Path) -> bool:
    return all((folder / name).is_dir() for name in GENDER_LABELS)


def scan_gender_folder(folder: str | os.PathLike[str]) -> tuple[list[Path], list[int]]:
    """Images and labels (0 male, 1 female) of a folder holding ``male/`` and ``female/``, or of the
    split of a Task A folder that :func:`gender_split_folder` picks (its ``val/``)."""
    root = gender_split_folder(folder)
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(GENDER_LABELS):
        try:
            imgs = scan_images(root / name)
        except FacecliError:
            imgs = []
        paths += imgs
        labels += [label] * len(imgs)
    if not paths:
        raise FacecliError(f"no images in {root}/male or {root}/female")
    return paths, labels


def gender_split_folder(folder: str | os.PathLike[str], split: str | None = None) -> Path:
    """The folder holding ``male/`` and ``female/`` that ``folder`` (and ``split``) point at."""
    root = require_dir(folder)
    if split is not None:
        _check_split(split)
        if _has_gender_dirs(root / split):
            return root / split
        if _has_gender_dirs(root):
            return root
        raise FacecliError(f"{folder} has no {split}/ folder with male/ and female/")
    if _has_gender_dirs(root):
        return root
    if _has_gender_dirs(root / "val"):
        return root / "val"
    if _has_gender_dirs(root / "train"):
        raise _train_only(folder)
    raise FacecliError(f"{folder} must hold 'male/' and 'female/' folders (or a Task A 'val/' with them)")


# ---------------------------------------------------------------- identity (Task B) layout


@dataclass(frozen=True)
class IdentityImage:
    """One image of an identity-layout folder."""

    path: Path | Unlisted
    identity: str
    distortion: str  # "" for a clean image, else one of DISTORTION_KINDS or "other"
    source_stem: str  # stem of the clean photo this image derives from


def parse_distortion(stem: str) -> tuple[str, str]:
    """Split ``<stem>_<kind>`` into (source stem, kind); kind is 'other' for an unknown suffix."""
    base, _, kind = stem.rpartition("_")
    if base and kind in DISTORTION_KINDS:
        return base, kind
    return stem, "other"


def has_identity_layout(folder: Path, distorted: bool = True) -> bool:
    """True when ``folder`` really is in the identity layout: some ``<identity>/distortion/`` folder (or, when
    not ``distorted``, any identity folder of images). A folder of folders of plain photos is not."""
    if not distorted:
        return is_identity_root(folder)
    return any(sub.is_dir() and not sub.name.startswith(".") and (sub / "distortion").is_dir()
               for sub in folder.iterdir())


def is_identity_root(folder: Path) -> bool:
    """True when ``folder`` looks like an identity root: sub-folders of images (and/or distortion/)."""
    for sub in folder.iterdir():
        if (sub.is_dir() and not sub.name.startswith(".")
                and ((sub / "distortion").is_dir() or any(is_image(f) for f in sub.iterdir() if f.is_file()))):
            return True
    return False


def resolve_identity_root(data: str | os.PathLike[str], split: str = "train") -> Path | None:
    """Find the identity root for ``split`` in a Task B folder: ``DATA/<split>`` or (for train) ``DATA``."""
    root = require_dir(data, "data folder")
    cand = root / split
    if cand.is_dir() and is_identity_root(cand):
        return cand
    if split == "train" and is_identity_root(root) and not (root / "val").is_dir():
        return root
    return None


def identity_split_folder(data: str | os.PathLike[str], split: str | None = None) -> Path:
    """The identity root that ``data`` (and ``split``) point at, for evaluation.

    ``DATA/val`` of a Task B folder, ``DATA/<split>`` when ``split`` is given, or ``DATA`` itself when it
    holds identity folders. A Task B folder with ``train/`` but no ``val/`` is refused unless
    ``split="train"`` says so.
    """
    root = require_dir(data, "data folder")
    if split is not None:
        _check_split(split)
        cand = root / split
        if cand.is_dir() and is_identity_root(cand):
            return cand
        raise FacecliError(f"{data} has no {split}/ folder of identity folders")
    cand = root / "val"
    if cand.is_dir() and is_identity_root(cand):
        return cand
    train = root / "train"
    if train.is_dir() and is_identity_root(train):
        raise _train_only(data)
    return root


def _check_split(split: str) -> None:
    if split not in ("train", "val"):
        raise FacecliError(f"split must be 'train' or 'val', not {split!r}")


def _train_only(data: str | os.PathLike[str]) -> FacecliError:
    return FacecliError(f"{data} has train/ but no val/: pass --split train to evaluate on train/ "
                        "(a model's own training data says nothing about new people)")


def scan_identity_folder(root: str | os.PathLike[str]) -> list[IdentityImage]:
    """All images of an identity-layout folder.

    ``ROOT/<identity>/*.jpg`` are clean images; ``ROOT/<identity>/distortion/<stem>_<kind>.jpg`` are
    degraded copies. Raises FacecliError when no identity folder holds an image.
    """
    root = require_dir(root)
    items: list[IdentityImage] = []
    for ident_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(ident_dir.iterdir()):
            if f.is_file() and is_image(f) and not f.name.startswith("."):
                items.append(IdentityImage(f, ident_dir.name, "", f.stem))
        dist = ident_dir / "distortion"
        if dist.is_dir():
            for f in walk_files(dist):
                stem, kind = ("", "other") if isinstance(f, Unlisted) else parse_distortion(f.stem)
                items.append(IdentityImage(f, ident_dir.name, kind, stem))
    if not items:
        raise FacecliError(f"{root} holds no identity folders with images (expected ROOT/<identity>/*.jpg)")
    return items
