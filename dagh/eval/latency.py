"""Latency statistics and a timing loop, in plain numpy (no torch)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from dagh.errors import ConfigError


@dataclasses.dataclass
class LatencyStats:
    """Summary of latency samples in milliseconds; ``throughput`` in items/s."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    throughput: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def summarize(samples_ms: np.ndarray | list[float], items_per_sample: int = 1) -> LatencyStats:
    """p50/p90/p99 (linear interpolation, numpy's default), mean, max and items/s."""
    samples = np.asarray(samples_ms, dtype=np.float64)
    if samples.size == 0:
        raise ConfigError("no latency samples to summarize")
    p50, p90, p99 = np.percentile(samples, [50, 90, 99])
    mean = float(samples.mean())
    return LatencyStats(int(samples.size), float(p50), float(p90), float(p99), mean, float(samples.max()),
                        items_per_sample * 1e3 / mean if mean > 0 else float("inf"))


def measure(fn: Callable[[], object], *, warmup: int = 3, iterations: int | None = None,
            duration: float | None = None, max_iterations: int = 100_000) -> np.ndarray:
    """Call ``fn`` ``warmup`` times, then ``iterations`` times or for ``duration`` seconds
    (whichever is given; at least one call); return the timed samples in ms."""
    if (iterations is None) == (duration is None):
        raise ConfigError("give exactly one of iterations or duration")
    if iterations is not None and iterations < 1:
        raise ConfigError(f"iterations must be >= 1, got {iterations}")
    if duration is not None and duration <= 0:
        raise ConfigError(f"duration must be > 0 seconds, got {duration}")
    for _ in range(warmup):
        fn()
    samples = []
    deadline = time.perf_counter() + duration if duration is not None else None
    while True:
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
        if iterations is not None and len(samples) >= iterations:
            break
        if deadline is not None and (time.perf_counter() >= deadline or len(samples) >= max_iterations):
            break
    return np.asarray(samples)
