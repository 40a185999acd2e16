"""Hold-out splits by person, for both tasks: no person's photos ever sit on both sides of a split.

Torch-free, so evaluation scripts and the hold-out maker use the very splits training uses without the
training stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facecli.errors import FacecliError
from facecli.scan import IdentityImage


def person_of(path: Path) -> str:
    """The person a gender image shows: its name without the ``_NNNN`` suffix (``Cameron_Diaz_0003`` ->
    ``Cameron_Diaz``); a name without such a suffix (``012_frontal``) is its own person."""
    stem = path.stem
    base, _, num = stem.rpartition("_")
    return base if base and num.isdigit() and len(num) == 4 else stem


def split_by_person(paths: list[Path], labels: list[int], fraction: float, seed: int):
    """Seeded hold-out grouped by person and stratified by label within that: no person is on both sides.

    Returns (train paths, val paths, train labels, val labels). People are shuffled (seeded) within each
    label and the first ones are held out until ``fraction`` of that label's images is reached.
    """
    rng = np.random.default_rng(seed)
    person_label: dict[str, int] = {}
    count: dict[str, int] = {}
    for p, y in zip(paths, labels, strict=True):
        person = person_of(p)
        person_label.setdefault(person, y)  # a person filed under both labels follows their first image
        count[person] = count.get(person, 0) + 1
    val_people: set[str] = set()
    for y in (0, 1):
        people = sorted(p for p, lab in person_label.items() if lab == y)
        want = fraction * sum(count[p] for p in people)
        got = 0
        for i in rng.permutation(len(people)):
            if got >= want:
                break
            val_people.add(people[i])
            got += count[people[i]]
    tr = [i for i, p in enumerate(paths) if person_of(p) not in val_people]
    va = [i for i, p in enumerate(paths) if person_of(p) in val_people]
    if not tr or not va:
        raise FacecliError("too few people to hold out a validation split grouped by person")
    return ([paths[i] for i in tr], [paths[i] for i in va], [labels[i] for i in tr], [labels[i] for i in va])


def split_by_identity(items: Sequence[IdentityImage], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of item indices by identity: no identity is on both sides."""
    names = sorted({it.identity for it in items})
    if len(names) < 2:
        raise FacecliError("need at least 2 identities to hold out a validation split")
    rng = np.random.default_rng(seed)
    n_val = min(len(names) - 1, max(1, int(round(len(names) * fraction))))
    val = set(rng.choice(names, n_val, replace=False).tolist())
    tr = [i for i, it in enumerate(items) if it.identity not in val]
    va = [i for i, it in enumerate(items) if it.identity in val]
    return tr, va


def gender_holdout(facecom: Path, fraction: float = 0.2, seed: int = 0) -> tuple[list[Path], list[int]]:
    """The held-out people's photos of FACECOM's Task A training split (``facecom/Task_A``) and their labels:
    the split every gender evaluation script and ``train gender`` use."""
    from facecli.scan import resolve_gender_split, scan_gender_folder

    train_dir = resolve_gender_split(Path(facecom) / "Task_A", "train")
    if train_dir is None:
        raise FacecliError(f"{facecom} has no Task_A/train/ with male/ and female/")
    paths, labels = scan_gender_folder(train_dir)
    _, val_paths, _, val_labels = split_by_person(paths, labels, fraction, seed)
    return val_paths, val_labels


def holdout_parser(description: str | None):
    """An argument parser with what every hold-out script takes: the FACECOM folder (``data``), the share of
    people held out (``--fraction``) and the split seed (``--seed``)."""
    import argparse

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="FACECOM folder holding Task_A/ and Task_B/")
    parser.add_argument("--fraction", type=float, default=0.2, help="share of people held out")
    parser.add_argument("--seed", type=int, default=0, help="split seed")
    return parser
