"""Training options as a typed config (stored in checkpoints)."""

from __future__ import annotations

import dataclasses
from typing import Any

from dagh.errors import ConfigError

SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 15
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: int = 1
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    augment: bool = True  # horizontal flip and +-2 px shifts
    # CPU threads torch trains with; 0: torch's default (one per core). Results depend on it: the
    # same seed, thread count, CPU instruction set and numpy give bit-identical weights.
    threads: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError(f"need epochs >= 1 and batch size >= 2, got {self.epochs}, {self.batch_size}")
        if self.lr <= 0:
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0 (0: torch's default), got {self.threads}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})
