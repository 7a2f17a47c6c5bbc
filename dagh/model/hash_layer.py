"""The discrete hash layer: b = sign(h), gradient passed straight through."""

from __future__ import annotations

import torch
from torch import nn


def binarize(h: torch.Tensor) -> torch.Tensor:
    """+1 where h >= 0, else -1: sign with sign(0) = +1, never 0.

    Written as a comparison, the same way the exported ONNX graph computes it,
    so torch and every exported model agree on the bit of an exact zero.
    """
    return torch.where(h >= 0, torch.ones_like(h), -torch.ones_like(h))


class _SignStraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:  # noqa: D401
        return binarize(h)

    @staticmethod
    def backward(ctx, grad_b: torch.Tensor) -> torch.Tensor:
        return grad_b  # straight through: dL/dh = dL/db (GreedyHash)


def sign_straight_through(h: torch.Tensor) -> torch.Tensor:
    """Forward: binarize(h). Backward: the upstream gradient unchanged."""
    return _SignStraightThrough.apply(h)


class HashLayer(nn.Module):
    """Turns the continuous code h into the code the loss sees.

    ``"sign"``: the discrete layer (binary codes in training too).
    ``"tanh"``: the DDH-style relaxation (codes are only binarized at test time).
    """

    def __init__(self, activation: str = "sign"):
        super().__init__()
        self.activation = activation

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.activation == "sign":
            return sign_straight_through(h)
        return torch.tanh(h)


def quantization_penalty(h: torch.Tensor, power: float = 3.0) -> torch.Tensor:
    """Mean of ||h| - 1|^power: pulls |h| to 1 so that sign(h) loses little (GreedyHash)."""
    return (h.abs() - 1.0).abs().pow(power).mean()
