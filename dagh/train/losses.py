"""The discrete identity loss on binary codes, and its parts.

total = identity_weight * margin-softmax(b)   (separability between identities)
      + center_weight   * center(b)           (compactness within an identity)
      + quant_weight    * ||h| - 1|^3         (keeps sign(h) close to h)

Each weight can be set to 0 for an ablation. The DDH-style baseline uses a
plain softmax classifier on the relaxed code instead of the margin classifier.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dagh.errors import ConfigError
from dagh.model.hash_layer import quantization_penalty

CLASSIFIERS = ("margin", "softmax")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Weights and hyper-parameters of the discrete identity loss."""

    classifier: str = "margin"  # "margin": normalized, additive margin; "softmax": plain linear
    scale: float = 16.0         # s: logit scale of the normalized classifier
    margin: float = 0.25        # m: additive cosine margin
    identity_weight: float = 1.0
    center_weight: float = 0.1
    quant_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.classifier not in CLASSIFIERS:
            raise ConfigError(f"classifier must be one of {CLASSIFIERS}, got {self.classifier!r}")
        if self.scale <= 0 or not 0 <= self.margin < 1:
            raise ConfigError(f"need scale > 0 and 0 <= margin < 1, got s={self.scale}, m={self.margin}")
        for name in ("identity_weight", "center_weight", "quant_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossConfig:
        return cls(**data)


def margin_logits(codes: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor | None,
                  scale: float, margin: float) -> torch.Tensor:
    """s * (cos(code, w_c) - m * [c == label]): CosFace logits on the codes."""
    cos = F.normalize(codes, dim=1) @ F.normalize(weight, dim=1).t()
    if labels is not None and margin:
        cos = cos - margin * F.one_hot(labels, weight.shape[0]).to(cos.dtype)
    return scale * cos


def center_loss(codes: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||b - c_y||^2 / (2K): pulls an identity's codes together."""
    diff = codes - centers[labels]
    return 0.5 * diff.pow(2).sum(dim=1).mean() / codes.shape[1]


class DiscreteIdentityLoss(nn.Module):
    """Identity classifier + center term + quantization penalty on the hash codes.

    The classifier weights are parameters trained with the network. The
    identity centers are a buffer moved towards the mean code of each identity
    in the batch (the center-loss update of Wen et al., ECCV 2016), so the
    center term only pulls codes, and an identity's center starts at its first
    batch mean rather than at 0 (which would pull every h towards 0).
    """

    def __init__(self, config: LossConfig, num_identities: int, bits: int):
        super().__init__()
        if num_identities < 2:
            raise ConfigError(f"the identity loss needs at least 2 identities, got {num_identities}")
        self.config = config
        self.weight = nn.Parameter(torch.randn(num_identities, bits) * 0.1)
        self.bias = nn.Parameter(torch.zeros(num_identities)) if config.classifier == "softmax" else None
        self.register_buffer("centers", torch.zeros(num_identities, bits))
        self.register_buffer("center_seen", torch.zeros(num_identities, dtype=torch.bool))
        self.center_momentum = 0.5

    @torch.no_grad()
    def update_centers(self, codes: torch.Tensor, labels: torch.Tensor) -> None:
        """Move each identity's center towards the mean of its codes in the batch."""
        ids, inverse = labels.unique(return_inverse=True)
        sums = codes.new_zeros(len(ids), codes.shape[1]).index_add_(0, inverse, codes)
        means = sums / torch.bincount(inverse, minlength=len(ids)).unsqueeze(1).to(codes.dtype)
        seen = self.center_seen[ids].unsqueeze(1)
        alpha = self.center_momentum
        self.centers[ids] = torch.where(seen, (1 - alpha) * self.centers[ids] + alpha * means, means)
        self.center_seen[ids] = True

    def logits(self, codes: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.config.classifier == "margin":
            return margin_logits(codes, self.weight, labels, self.config.scale, self.config.margin)
        return F.linear(codes, self.weight, self.bias)

    def forward(self, h: torch.Tensor, codes: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns the terms, their weighted ``total``, and ``logits`` (without margin)."""
        c = self.config
        zero = codes.new_zeros(())
        if self.training and c.center_weight:
            self.update_centers(codes.detach(), labels)
        terms = {
            "identity": F.cross_entropy(self.logits(codes, labels), labels) if c.identity_weight else zero,
            "center": center_loss(codes, self.centers, labels) if c.center_weight else zero,
            "quant": quantization_penalty(h) if c.quant_weight else zero,
        }
        terms["total"] = (c.identity_weight * terms["identity"] + c.center_weight * terms["center"]
                          + c.quant_weight * terms["quant"])
        with torch.no_grad():
            terms["logits"] = self.logits(codes.detach())
        return terms


def default_loss_config(model_name: str, **overrides: Any) -> LossConfig:
    """The loss each registered model trains with: DDH uses softmax on the relaxed code."""
    base: dict[str, Any] = {}
    if model_name == "ddh":
        base = dict(classifier="softmax", center_weight=0.0, quant_weight=0.0)
    base.update(overrides)
    return LossConfig(**base)
