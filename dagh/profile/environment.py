"""The environment block of a profile report: CPU, GPU, library versions, Jetson power mode."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:
        return None


def _jetson_power_mode() -> str | None:
    if not shutil.which("nvpmodel"):
        return None
    try:
        out = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=5).stdout
        return out.strip().splitlines()[0] if out.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    from dagh.runtime.device import gpu_info

    gpu = gpu_info()
    return {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "gpu": gpu.get("gpu_name"),
        "compute_capability": gpu.get("compute_capability"), "driver": gpu.get("driver"),
        "onnxruntime": _version("onnxruntime"), "tensorrt": _version("tensorrt"), "numba": _version("numba"),
        "numpy": _version("numpy"), "jetson_power_mode": _jetson_power_mode(),
        "jetson_model": Path("/proc/device-tree/model").read_text().strip("\x00\n")
        if Path("/proc/device-tree/model").exists() else None,
    }
