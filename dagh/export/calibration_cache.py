"""TensorRT's implicit-quantization calibration cache, written from onnxruntime's per-tensor ranges.

Each line after the header is ``tensor: scale`` with scale = amax / 127 as a big-endian float32 in hex.
The header names the TensorRT library version (``getInferLibVersion``) that reads it and the
calibrator, e.g. ``TRT-8601-EntropyCalibration2`` (8.6.1) or ``TRT-100300-EntropyCalibration2``
(10.3.0): TensorRT refuses a cache whose header is not its own. Implicit INT8 calibration exists
in TensorRT 8.6 and 10 (deprecated from 10.1) and is gone from 11, so the cache is written on the
device, by dagh-engine, for the TensorRT found there.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from dagh.errors import ConfigError
from dagh.fileio import atomic_write_text

CACHE_NAME = "calibration.cache"


def infer_lib_version(version: str) -> int:
    """NV_TENSORRT_VERSION of a TensorRT version string: 8.6.1 -> 8601, 10.3.0 -> 100300."""
    try:
        major, minor, patch = (int(part) for part in version.split(".")[:3])
    except ValueError:
        raise ConfigError(f"cannot read the TensorRT version {version!r}") from None
    if major >= 11:
        raise ConfigError(f"TensorRT {version} has no implicit INT8 calibration: it builds the Q/DQ model only")
    return major * 10000 + minor * 100 + patch if major >= 10 else major * 1000 + minor * 100 + patch


def write_calibration_cache(ranges_json: str | os.PathLike, out: str | os.PathLike, tensorrt_version: str,
                            method: str) -> Path:
    """Write the cache for ``tensorrt_version`` from a TensorsData JSON of per-tensor ranges."""
    data = json.loads(Path(ranges_json).read_text(encoding="utf-8"))
    ranges = data.get("data", data)
    calibrator = "EntropyCalibration2" if method.startswith("entropy") else "MinMaxCalibration"
    lines = [f"TRT-{infer_lib_version(tensorrt_version)}-{calibrator}"]
    for name in sorted(ranges):
        entry = ranges[name]
        amax = max([abs(v) for key in ("lowest", "highest") for v in _values(entry.get(key, 0.0))] + [1e-12])
        lines.append(f"{name}: {struct.pack('>f', amax / 127.0).hex()}")
    atomic_write_text(out, "\n".join(lines) + "\n")
    return Path(out)


def _values(value: Any) -> list[float]:
    """Numbers of a TensorsData JSON field: a number, a list, or {"data": [...], "CLS": "numpy.array"}."""
    if isinstance(value, dict):
        value = value.get("data", [])
    return [float(v) for v in np.asarray(value, dtype=np.float64).ravel()]
