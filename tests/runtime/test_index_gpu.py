"""The GPU kernel's logic against the CPU reference, in numba's CUDA simulator."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.cuda_simulator
def test_gpu_kernel_matches_cpu_in_the_simulator():
    pytest.importorskip("numba")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    script = Path(__file__).with_name("gpu_sim_check.py")
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "GPU-SIM-OK" in proc.stdout


def test_gpu_backend_without_gpu_is_a_clear_error():
    pytest.importorskip("numba")
    from numba import cuda

    if cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    from dagh.errors import DeviceError
    from dagh.runtime.search.index import HammingIndex

    with pytest.raises(DeviceError, match="no usable CUDA GPU"):
        HammingIndex(48, backend="gpu")
