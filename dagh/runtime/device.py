"""What GPU this is: the facts an engine is built for and checked against (no CUDA import needed)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any


def gpu_info() -> dict[str, Any]:
    """Name, compute capability and driver of GPU 0, from nvidia-smi when present."""
    exe = shutil.which("nvidia-smi")
    if exe:
        try:
            out = subprocess.run([exe, "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout
            name, cap, driver = [s.strip() for s in out.splitlines()[0].split(",")]
            return {"gpu_name": name, "compute_capability": cap, "driver": driver}
        except (subprocess.SubprocessError, ValueError, IndexError, OSError):
            pass
    try:  # Jetson has no nvidia-smi on older JetPacks; cuda-python is the next best witness
        from cuda.bindings import runtime as cudart  # type: ignore

        err, prop = cudart.cudaGetDeviceProperties(0)
        if int(err) == 0:
            return {"gpu_name": prop.name.decode(errors="replace").rstrip("\x00"),
                    "compute_capability": f"{prop.major}.{prop.minor}", "driver": None}
    except Exception:
        pass
    return {"gpu_name": None, "compute_capability": None, "driver": None}
