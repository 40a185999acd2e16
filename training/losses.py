"""Losses: weighted BCE and focal loss (gender), ArcFace and batch-hard triplet (identity), cosine distillation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class BinaryFocalLoss(nn.Module):
    """Focal loss on logits (Lin et al. 2017): ``alpha`` weights the positive class, ``gamma`` focuses."""

    def __init__(self, alpha: float = 0.75, gamma: float = 2.0):
        super().__init__()
        self.alpha, self.gamma = alpha, gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        p_t = torch.exp(-bce)
        alpha_t = self.alpha * target + (1 - self.alpha) * (1 - target)
        return (alpha_t * (1 - p_t) ** self.gamma * bce).mean()


class WeightedBCE(nn.Module):
    """BCE on logits with ``pos_weight`` (e.g. n_negative / n_positive for class imbalance)."""

    def __init__(self, pos_weight: float = 1.0):
        super().__init__()
        self.register_buffer("pos_weight", torch.tensor(float(pos_weight)))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=self.pos_weight)


class ArcFaceLoss(nn.Module):
    """Additive angular margin loss (Deng et al. 2019) with class centres learnt here.

    ``scale`` s=32 and ``margin`` m=0.3 suit a few hundred to a few thousand identities; the easy-margin
    fallback keeps training stable when theta + m passes pi.
    """

    def __init__(self, embedding_dim: int, num_classes: int, scale: float = 32.0, margin: float = 0.3):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale, self.margin = scale, margin
        self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
        self.th = math.cos(math.pi - margin)
        self.mm = math.sin(math.pi - margin) * margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = F.linear(F.normalize(embeddings.float()), F.normalize(self.weight))
        sine = torch.sqrt((1.0 - cosine.pow(2)).clamp(0, 1))
        phi = cosine * self.cos_m - sine * self.sin_m
        phi = torch.where(cosine > self.th, phi, cosine - self.mm)
        one_hot = F.one_hot(labels, cosine.size(1)).bool()
        logits = torch.where(one_hot, phi, cosine) * self.scale
        return F.cross_entropy(logits, labels)


class BatchHardTripletLoss(nn.Module):
    """Triplet loss with batch-hard mining (Hermans et al. 2017) on L2-normalised embeddings.

    Needs batches holding several images of each identity (see ``samplers.IdentitySampler``).
    """

    def __init__(self, margin: float = 0.3):
        super().__init__()
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb = F.normalize(embeddings.float())
        dist = (2 - 2 * emb @ emb.t()).clamp_min(1e-12).sqrt()
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        pos = same & ~eye
        valid = pos.any(1)
        if not valid.any():
            return emb.sum() * 0.0
        hardest_pos = (dist * pos).max(1).values
        hardest_neg = dist.masked_fill(same, float("inf")).min(1).values
        return F.relu(hardest_pos - hardest_neg + self.margin)[valid].mean()


class CosineDistillLoss(nn.Module):
    """Distillation to unit-length targets: the weighted mean of 1 - cos(student output, target) per sample."""

    def forward(self, out: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        per = 1 - (F.normalize(out, dim=1) * target).sum(dim=1)
        return (per * weight).sum() / weight.sum()
