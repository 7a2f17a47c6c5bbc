"""benchmarks/hamming_gpu.py runs end to end in numba's CUDA simulator, so it works when a GPU is lent."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.cuda_simulator
def test_gpu_benchmark_runs_in_the_simulator(tmp_path):
    pytest.importorskip("numba")
    out = tmp_path / "gpu.json"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "hamming_gpu.py"), "--n", "700", "--bits", "12,65",
                           "--nq", "2", "--k", "4", "--budget", "0", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "GPU results equal the CPU index's" in proc.stdout
    report = json.loads(out.read_text())
    assert report["simulated"] is True and len(report["rows"]) == 2
    assert all(row["agree"] for row in report["rows"])
