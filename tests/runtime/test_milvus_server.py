"""The optional BIN_IVF_FLAT lane on a real Milvus standalone server (tests/runtime/milvus_server_lane.py).

The embedded server (the `milvus` PyPI package, 2.3.5) listens on every interface, so it is started only
inside a private network namespace whose one interface is 127.0.0.1; where the package or the namespace is
not to be had, the test skips with one line saying which."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _namespace_works() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    probe = subprocess.run(["unshare", "-rn", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=20)
    return probe.returncode == 0


def test_bin_ivf_flat_on_a_standalone_server(tmp_path):
    pytest.importorskip("milvus", reason="no embedded Milvus server here (pip install 'dagh[milvus-server]')")
    pytest.importorskip("pymilvus", reason="pymilvus is not installed (pip install 'dagh[milvus]')")
    if not _namespace_works():
        pytest.skip("cannot make a private network namespace (unshare -rn): the embedded Milvus server listens on "
                    "every interface, so dagh starts it only inside one")
    out = tmp_path / "lane.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = f"ip link set lo up && {sys.executable} -m tests.runtime.milvus_server_lane {out}"
    result = subprocess.run(["unshare", "-rn", "sh", "-c", command], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    lane = json.loads(out.read_text())
    assert lane["bin_flat_equal"]  # BIN_FLAT on the server: the exact distances (ties in the server's order)
    assert lane["record_refused_shrink"]  # the companion-collection record catches rows deleted behind dagh
    assert lane["ivf_indexed_rows"] >= lane["n"]
    for kind, recalls in lane["ivf_recall_at_10"].items():
        values = [recalls[str(p)] for p in (8, 32, 64, 128)]
        assert values == sorted(values) and 0 < values[0] <= values[-1] <= 1, (kind, values)
