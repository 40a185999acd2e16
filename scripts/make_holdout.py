"""Recreate the held-out validation split used in training as a folder of symbolic links.

The shipped models were selected on a held-out part of FACECOM's train split (grouped by person for both
tasks; stratified by label within that for gender). This script rebuilds exactly that part with the same split functions and
seed, so the exported ONNX models can be evaluated on it through the CLI:

    python scripts/make_holdout.py ../shared/data/FACECOM /tmp/holdout --seed 0
    facecli evaluate gender /tmp/holdout/gender
    facecli evaluate identity /tmp/holdout/identity
    facecli gallery build /tmp/holdout/identity_train && facecli match /tmp/holdout/identity   # open set

Nothing is copied: the folder holds links into DATA.
"""

from __future__ import annotations

import os
from pathlib import Path

from facecli.card import GENDER_LABELS
from facecli.scan import resolve_identity_root, scan_identity_folder
from facecli.splits import gender_holdout, holdout_parser, split_by_identity


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    os.symlink(src.resolve(), dst)


def main() -> None:
    ap = holdout_parser(__doc__)
    ap.add_argument("out", type=Path, help="folder to create (gender/ and identity/ inside)")
    args = ap.parse_args()

    val_paths, val_labels = gender_holdout(args.data, args.fraction, args.seed)
    for p, y in zip(val_paths, val_labels, strict=True):
        link(p, args.out / "gender" / GENDER_LABELS[y] / p.name)
    print(f"gender: {len(val_paths)} images ({sum(val_labels)} female) -> {args.out / 'gender'}")

    root = resolve_identity_root(args.data / "Task_B", "train")
    items = scan_identity_folder(root)
    tr, va = split_by_identity(items, args.fraction, args.seed)
    for name, part in (("identity", va), ("identity_train", tr)):
        for i in part:
            link(items[i].path, args.out / name / items[i].path.relative_to(root))
        print(f"{name}: {len({items[i].identity for i in part})} identities, {len(part)} images -> {args.out / name}")


if __name__ == "__main__":
    main()
