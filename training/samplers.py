"""Batch samplers: identities x images (for triplet mining)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class IdentitySampler(Sampler[list[int]]):
    """Batches of ``identities_per_batch`` identities x ``images_per_identity`` images each (P x K).

    Identities with fewer images are sampled with replacement; one epoch visits each image about once.
    """

    def __init__(self, labels: Sequence[int], identities_per_batch: int = 16, images_per_identity: int = 4,
                 seed: int = 0):
        self.by_label: dict[int, list[int]] = defaultdict(list)
        for i, lab in enumerate(labels):
            self.by_label[int(lab)].append(i)
        self.p, self.k = identities_per_batch, images_per_identity
        self.n = len(labels)
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return max(1, self.n // (self.p * self.k))

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        ids = list(self.by_label)
        for _ in range(len(self)):
            chosen = rng.choice(ids, size=min(self.p, len(ids)), replace=False)
            batch: list[int] = []
            for lab in chosen:
                pool = self.by_label[lab]
                batch += list(rng.choice(pool, size=self.k, replace=len(pool) < self.k))
            yield batch
