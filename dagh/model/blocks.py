"""Building blocks of the multi-attention cascade network."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class InputSpatialAttention(nn.Module):
    """A soft mask over the input image from a small encoder-decoder.

    Returns ``x + x * m`` (residual form): where the mask is 0 the image passes
    unchanged, so a poor mask early in training cannot erase the face.
    """

    def __init__(self, channels: int = 3, hidden: int = 8):
        super().__init__()
        self.encoder = nn.Sequential(conv_bn_relu(channels, hidden), nn.MaxPool2d(2),
                                     conv_bn_relu(hidden, hidden * 2))
        self.decoder = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                     conv_bn_relu(hidden * 2, hidden), nn.Conv2d(hidden, 1, 1))

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.encoder(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x * self.mask(x)


class ChannelAttention(nn.Module):
    """Squeeze-excitation: reweight channels from their global average."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc(x.mean(dim=(2, 3)))
        return x * weights[:, :, None, None]


class SpatialAttention(nn.Module):
    """Reweight positions from channel-pooled maps (mean and max) through a conv."""

    def __init__(self, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class AttentionStage(nn.Module):
    """Conv stage, then channel attention, then spatial attention (the cascade unit)."""

    def __init__(self, cin: int, cout: int, *, channel_attention: bool, spatial_attention: bool,
                 se_reduction: int):
        super().__init__()
        self.conv = conv_bn_relu(cin, cout)
        self.channel = ChannelAttention(cout, se_reduction) if channel_attention else nn.Identity()
        self.spatial = SpatialAttention() if spatial_attention else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(self.conv(x)))
