"""The model configuration: every architectural choice is a named field, so an
ablation switches a part off by configuration, and a checkpoint rebuilds the
exact network from this dict alone."""

from __future__ import annotations

import dataclasses
from typing import Any

from dagh.errors import ConfigError

MIN_BITS, MAX_BITS = 8, 256
INPUT_SIZES = (32, 64, 112)
HASH_ACTIVATIONS = ("sign", "tanh")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of a DAGH-family hashing network."""

    name: str = "dagh"
    bits: int = 48
    input_size: int = 32
    widths: tuple[int, ...] = (32, 64, 128, 256)
    input_attention: bool = True     # spatial attention mask over the input, x + x*m
    channel_attention: bool = True   # squeeze-excitation after each stage
    spatial_attention: bool = True   # pooled-channel conv -> sigmoid after each stage
    multiscale_fusion: bool = True   # fuse the last two stages (DDH)
    hash_activation: str = "sign"    # "sign": discrete layer, straight-through; "tanh": relaxation
    fc_dim: int = 512
    se_reduction: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if not isinstance(self.bits, int) or not MIN_BITS <= self.bits <= MAX_BITS:
            raise ConfigError(f"code length must be an integer from {MIN_BITS} to {MAX_BITS} bits, "
                              f"got {self.bits!r}")
        if self.input_size not in INPUT_SIZES:
            raise ConfigError(f"input size must be one of {INPUT_SIZES}, got {self.input_size!r}")
        if len(self.widths) < 2 or any(w < 4 for w in self.widths):
            raise ConfigError(f"widths needs at least 2 stages of >= 4 channels, got {self.widths}")
        if self.hash_activation not in HASH_ACTIVATIONS:
            raise ConfigError(f"hash_activation must be one of {HASH_ACTIVATIONS}, "
                              f"got {self.hash_activation!r}")
        if self.fc_dim < 8 or self.se_reduction < 1:
            raise ConfigError("fc_dim must be >= 8 and se_reduction >= 1")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["widths"] = list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown model config fields {sorted(unknown)}; "
                              "was this checkpoint written by a newer dagh?")
        return cls(**data)
