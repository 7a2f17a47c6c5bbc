"""The DAGH multi-attention cascade network and the DDH-style baseline.

Layout: input attention -> attention stages (pool between) -> multi-scale fusion
of the last two stages -> FC -> BN -> ReLU -> Linear(K) -> BN = h -> hash layer.
"""

from __future__ import annotations

import torch
from torch import nn

from dagh.model.blocks import AttentionStage, InputSpatialAttention
from dagh.model.config import ModelConfig
from dagh.model.hash_layer import HashLayer, binarize

FUSION_GRID = 2  # each fused stage is pooled to 2x2, so any input size gives the same FC


class HashNet(nn.Module):
    """A DAGH-family hashing network built from a :class:`ModelConfig`.

    ``forward(x)`` returns ``(h, b)``: the continuous code and the code the loss
    sees (sign with straight-through gradient, or tanh). ``encode(x)`` returns
    the +1/-1 binary codes used for retrieval.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.input_attention = InputSpatialAttention() if c.input_attention else nn.Identity()
        stages, cin = [], 3
        for w in c.widths:
            stages.append(AttentionStage(cin, w, channel_attention=c.channel_attention,
                                         spatial_attention=c.spatial_attention,
                                         se_reduction=c.se_reduction))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2)
        self.fuse_pool = nn.AdaptiveAvgPool2d(FUSION_GRID)
        fused = c.widths[-1] + (c.widths[-2] if c.multiscale_fusion else 0)
        self.head = nn.Sequential(
            nn.Linear(fused * FUSION_GRID * FUSION_GRID, c.fc_dim), nn.BatchNorm1d(c.fc_dim),
            nn.ReLU(inplace=True), nn.Linear(c.fc_dim, c.bits), nn.BatchNorm1d(c.bits))
        self.hash = HashLayer(c.hash_activation)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_attention(x)
        outputs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            outputs.append(x)
            if i < len(self.stages) - 1:
                x = self.pool(x)
        parts = outputs[-2:] if self.config.multiscale_fusion else outputs[-1:]
        return torch.cat([self.fuse_pool(p).flatten(1) for p in parts], dim=1)

    def continuous_code(self, x: torch.Tensor) -> torch.Tensor:
        """h: the real-valued code before binarization."""
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.continuous_code(x)
        return h, self.hash(h)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Binary codes (+1/-1, float) for retrieval, whatever the hash activation."""
        return binarize(self.continuous_code(x))
