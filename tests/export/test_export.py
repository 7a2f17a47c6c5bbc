import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from dagh.cli import export as export_cli
from dagh.errors import ConfigError, DependencyError
from dagh.export.onnx_export import read_metadata
from dagh.export.pipeline import ExportOptions, export_checkpoint
from dagh.manifest import ManifestError, load_manifest
from dagh.runtime.encode.onnxruntime_runner import OnnxRunner
from dagh.train.checkpoint import load_checkpoint
from tests.conftest import make_checkpoint

QUIET = dict(log=lambda m: None)


@pytest.mark.parametrize("bits, size", [(12, 32), (48, 32), (64, 32), (48, 64)])
def test_round_trip(tmp_path, bits, size):
    ckpt = make_checkpoint(tmp_path / "m.pt", bits=bits, size=size)
    result = export_checkpoint(ckpt, tmp_path / "out", ExportOptions(fp16=True), **QUIET)
    manifest = load_manifest(tmp_path / "out")
    assert manifest.code_bits == bits and manifest.input.shape == ["N", 3, size, size]
    fp32 = next(m for m in manifest.reports["parity"]["models"] if m["precision"] == "fp32")
    # FP32 ONNX agrees with torch on every bit but those within rounding of zero
    assert fp32["flips_outside_tolerance"] == 0
    assert fp32["max_abs_h_error"] < 1e-4
    assert {f.path for f in manifest.files} == {"model.onnx", "model.fp16.onnx"}
    assert result.trtexec and "--minShapes=images:1x3x" in result.trtexec[0]


def test_graph_has_no_sign_and_binarizes_with_greater_or_equal(tmp_path, tiny_checkpoint):
    export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(fp16=True), **QUIET)
    for name in ("model.onnx", "model.fp16.onnx"):
        graph = onnx.load(tmp_path / "out" / name).graph
        ops = [n.op_type for n in graph.node]
        assert "Sign" not in ops and "GreaterOrEqual" in ops
        producer = {o: n for n in graph.node for o in n.output}
        codes = producer["codes"]
        assert codes.op_type in ("Where", "Cast")
        assert [o.name for o in graph.output] == ["codes", "h"]
        assert graph.input[0].name == "images"
        assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 I/O kept
        assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in graph.output)


def test_dynamic_batch(tmp_path, tiny_checkpoint, rng):
    export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(), **QUIET)
    runner = OnnxRunner(tmp_path / "out" / "model.onnx", batch_size=1000)
    model = load_checkpoint(tiny_checkpoint).build_model()
    import torch

    for n in (1, 2, 7, 64):
        x = rng.standard_normal((n, 3, 32, 32)).astype(np.float32)
        codes, h = runner.run(x)
        assert codes.shape == (n, 12)
        assert set(np.unique(codes)) <= {-1.0, 1.0}
        with torch.no_grad():
            ref = model.continuous_code(torch.from_numpy(x)).numpy()
        assert np.abs(h - ref).max() < 1e-4


def test_metadata_survives(tmp_path, tiny_checkpoint):
    export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(fp16=True), **QUIET)
    for name, precision in (("model.onnx", "fp32"), ("model.fp16.onnx", "fp16")):
        meta = read_metadata(tmp_path / "out" / name)
        assert meta["code_bits"] == "12" and meta["input_size"] == "32"
        assert meta["precision"] == precision and meta["color_order"] == "RGB"
        assert meta["mean"] == "0.5,0.5,0.5" and len(meta["source_checkpoint_sha256"]) == 64
        assert meta["dagh_version"]


def test_manifest_detects_tampering(tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    export_checkpoint(tiny_checkpoint, out, ExportOptions(), **QUIET)
    load_manifest(out)
    data = bytearray((out / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (out / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="sha256"):
        load_manifest(out)
    (out / "model.onnx").unlink()
    with pytest.raises(ManifestError, match="missing"):
        load_manifest(out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="schema version 99"):
        load_manifest(out)


def test_refuses_non_empty_directory_without_force(tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="--force"):
        export_checkpoint(tiny_checkpoint, out, ExportOptions(), **QUIET)
    assert (out / "precious.txt").read_text() == "keep me"
    export_checkpoint(tiny_checkpoint, out, ExportOptions(force=True), **QUIET)
    assert not (out / "precious.txt").exists() and (out / "manifest.json").exists()


def test_engine_yes_without_tensorrt_names_the_extra(tmp_path, tiny_checkpoint):
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    with pytest.raises(DependencyError, match=r"dagh\[tensorrt\]"):
        export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(fp16=True, engine="yes"), **QUIET)
    assert not (tmp_path / "out").exists()
    result = export_checkpoint(tiny_checkpoint, tmp_path / "auto", ExportOptions(fp16=True), **QUIET)
    assert any("skipping TensorRT" in n for n in result.notes)


def test_bad_options():
    with pytest.raises(ConfigError, match="--fp16"):
        ExportOptions(engine="yes")
    with pytest.raises(ConfigError):
        ExportOptions(engine="maybe")


def test_opset_out_of_range(tmp_path, tiny_checkpoint):
    with pytest.raises(ConfigError, match="opset 21"):
        export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(opset=21), **QUIET)


def test_cli_prints_table_and_directory(tmp_path, tiny_checkpoint):
    result = CliRunner().invoke(export_cli.main, [str(tiny_checkpoint), "-o", str(tmp_path / "out"), "--fp16"])
    assert result.exit_code == 0, result.output
    assert "model.fp16.onnx" in result.output and "ΔmAP" in result.output
    assert result.output.strip().splitlines()[-1] == f"export directory: {tmp_path / 'out'}"
    again = CliRunner().invoke(export_cli.main, [str(tiny_checkpoint), "-o", str(tmp_path / "out")])
    assert again.exit_code == 2 and "--force" in again.output


def _partials(parent, name):
    return [p for p in parent.iterdir() if p.name.startswith(f".{name}.partial-")]


@pytest.mark.parametrize("existing", [False, True])
def test_killed_export_never_leaves_a_complete_looking_directory(tmp_path, existing):
    ckpt = make_checkpoint(tmp_path / "m.pt", bits=48, size=64)
    out = tmp_path / "out"
    if existing:
        export_checkpoint(ckpt, out, ExportOptions(), **QUIET)
        before = {p.name: p.read_bytes() for p in out.iterdir()}
    killed = False
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "dagh.cli.export", str(ckpt), "-o", str(out), "--fp16",
                                 "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if _partials(tmp_path, "out") and any(_partials(tmp_path, "out")[0].iterdir()):
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.005)
        proc.wait()
        if killed:
            break
    assert killed, "the export finished before it could be killed"
    if existing:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        load_manifest(out)
    else:
        assert not out.exists()
