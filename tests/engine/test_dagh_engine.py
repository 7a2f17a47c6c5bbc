"""dagh-engine end to end on a real export directory, with fake tensorrt / cuda-python modules that have
each real version's names (tests/fake_tensorrt.py); runs in the torch-free environment too."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from dagh.cli.engine import main
from dagh.errors import ConfigError
from dagh.manifest import load_manifest
from tests.fake_tensorrt import VERSIONS, Script, install


@pytest.fixture
def export(tmp_path, export_dir):
    target = tmp_path / "export"
    shutil.copytree(export_dir, target)
    return target


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("version", VERSIONS)
def test_builds_checks_and_records_the_engine(monkeypatch, export, version):
    _, cudart, script = install(monkeypatch, version)
    result = run(export, "--max-batch", 16)
    assert result.exit_code == 0, result.output
    manifest = load_manifest(export)  # every sha256 checks out, the engine's too
    entry = manifest.file("engine", "fp16")
    assert entry.path == "model.fp16.engine" and entry.details["tensorrt_version"] == version
    assert entry.details["profile"] == {"min": 1, "opt": 8, "max": 16} and entry.details["source_onnx"] == "model.fp16.onnx"
    check = entry.details["check"]
    assert check["passed"] and check["crops"] == 128 and check["flipped_bits"] == round(check["flip_rate"] * 128 * 24)
    assert manifest.reports["engine_check"]["engines"]["model.fp16.engine"] == check
    assert manifest.file("timing-cache") is not None and "model.fp16.engine" in result.output
    assert not list(export.glob(".*building")) and cudart.buffers == {}  # runners closed
    # the runtime opens the engine it recorded, and its codes are the model's
    from dagh.runtime import Encoder

    crops = np.load(export / "check_crops.npy")[:5]
    with Encoder.open(export, "fp16", backend="tensorrt") as trt_encoder:
        assert trt_encoder.backend == "tensorrt"
        codes = trt_encoder.encode(crops)
    assert np.array_equal(codes, Encoder.open(export, "fp16", backend="onnxruntime").encode(crops))


def test_an_engine_that_flips_bits_is_refused_and_nothing_changes(monkeypatch, export):
    install(monkeypatch, "10.0.1", Script(flip=0.02))
    before = (export / "manifest.json").read_bytes()
    result = run(export)
    assert result.exit_code == 2 and "flips 2.0" in result.output and "not kept" in result.output
    assert "Traceback" not in result.output
    assert (export / "manifest.json").read_bytes() == before
    assert not (export / "model.fp16.engine").exists() and not list(export.glob(".*building"))


def test_a_refused_rebuild_leaves_the_export_verifiable(monkeypatch, export):
    install(monkeypatch, "10.0.1")
    assert run(export).exit_code == 0
    before = {p.name: p.read_bytes() for p in export.iterdir()}
    install(monkeypatch, "10.0.1", Script(flip=0.02))  # the rebuild flips bits: refused
    assert run(export).exit_code == 2
    load_manifest(export)  # every sha256 still checks out, timing.cache's too
    assert {p.name: p.read_bytes() for p in export.iterdir()} == before


def test_a_failure_after_the_builds_changes_nothing(monkeypatch, export):
    import dagh.export.engines as engines

    install(monkeypatch, "10.0.1")
    before = {p.name: p.read_bytes() for p in export.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(engines, "record_engines", broken)
    with pytest.raises(OSError, match="disk full"):
        engines.build_engines(export, engines.EngineSettings(), log=lambda m: None)
    assert {p.name: p.read_bytes() for p in export.iterdir()} == before  # no engine, no temporary file


def test_an_engine_from_another_gpu_is_refused_by_the_runtime(monkeypatch, export):
    from dagh.runtime import Encoder
    from dagh.runtime.encode.tensorrt_runner import EngineMismatchError

    install(monkeypatch, "10.16.1.11", Script(gpu_name="NVIDIA Jetson AGX Orin"))
    assert run(export).exit_code == 0
    assert load_manifest(export).file("engine", "fp16").details["gpu_name"] == "NVIDIA Jetson AGX Orin"
    install(monkeypatch, "10.16.1.11", Script(gpu_name="NVIDIA H200"))
    with pytest.raises(EngineMismatchError, match="built for NVIDIA Jetson AGX Orin, this GPU is NVIDIA H200"):
        Encoder.open(export, "fp16", backend="tensorrt")


def test_dla_int8_is_refused_with_the_reason(monkeypatch, export):
    install(monkeypatch, "10.0.1", Script(dla_cores=1))
    result = run(export, "--int8", "--dla-core", 0)
    assert result.exit_code == 2 and "implicit" in result.output


def test_dla_variant_records_where_layers_ran(monkeypatch, export):
    log = ("[DlaLayer] {ForeignNode[/conv...Relu]}", "[GpuLayer] SHUFFLE: /Flatten")
    _, _, script = install(monkeypatch, "10.0.1", Script(dla_cores=2, dla_refuses=("Flatten", "Reshape"),
                                                         build_log=log))
    result = run(export, "--dla-core", 1, "--dla-batch", 4, "--dla-fallback")
    assert result.exit_code == 0, result.output
    manifest = load_manifest(export)
    gpu, dla = manifest.file("engine", "fp16"), manifest.file("dla-engine", "fp16")
    assert gpu.details["dla_core"] is None and dla.path == "model.fp16.dla1.engine"
    assert dla.details["profile"] == {"min": 4, "opt": 4, "max": 4} and dla.details["check"]["passed"]
    assert dla.details["dla"]["dla_layers"] == ["{ForeignNode[/conv...Relu]}"]
    assert "1 DLA subgraphs, 1 GPU layers" in result.output
    # the runtime runs it on its core, padding a short batch to the static 4
    from dagh.runtime import Encoder

    crops = np.load(export / "check_crops.npy")[:5]
    with Encoder.open(export, "fp16", backend="tensorrt", dla_core=1) as encoder:
        codes = encoder.encode(crops)
    assert script.runtime_dla_core == 1 and [s[0] for s in script.input_shapes[-2:]] == [4, 4]
    assert np.array_equal(codes, Encoder.open(export, "fp16", backend="onnxruntime").encode(crops))
    with pytest.raises(ConfigError, match="dagh-engine --dla-core 0"):
        Encoder.open(export, "fp16", dla_core=0)


def test_dla_without_fallback_is_refused_before_anything_is_kept(monkeypatch, export):
    install(monkeypatch, "8.6.1", Script(dla_cores=1, dla_refuses=("Flatten", "Reshape")))
    before = (export / "manifest.json").read_bytes()
    result = run(export, "--dla-core", 0)
    assert result.exit_code == 2 and "--dla-fallback" in result.output
    assert (export / "manifest.json").read_bytes() == before and not (export / "model.fp16.engine").exists()


def test_bad_exports_are_clear_errors(monkeypatch, export, tmp_path):
    install(monkeypatch, "10.0.1")
    with open(export / "model.fp16.onnx", "ab") as handle:
        handle.write(b"\0")
    result = run(export)
    assert result.exit_code == 2 and "model.fp16.onnx does not match its sha256" in result.output
    result = run(export, "--int8")
    assert result.exit_code == 2
    result = run(tmp_path / "nowhere")
    assert result.exit_code == 2 and "manifest.json" in result.output


def test_an_export_without_check_crops_needs_no_check(monkeypatch, export):
    import json

    install(monkeypatch, "11.4.0.106")
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if not f["kind"].startswith("check-")]
    (export / "manifest.json").write_text(json.dumps(manifest))
    result = run(export)
    assert result.exit_code == 2 and "--no-check" in result.output
    result = run(export, "--no-check")
    assert result.exit_code == 0 and "not checked" in result.output


def test_print_trtexec_needs_no_tensorrt(export):
    result = run(export, "--print-trtexec", "--max-batch", 32)
    assert result.exit_code == 0 and "--onnx=model.fp16.onnx" in result.output
    assert "--maxShapes=images:32x3x32x32" in result.output


def test_without_tensorrt_it_says_what_to_install(monkeypatch, export):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt raises ImportError
    result = run(export)
    assert result.exit_code == 2 and "pip install 'dagh[tensorrt]'" in result.output


def test_help_runs_without_torch():
    code = ("import sys; from click.testing import CliRunner; from dagh.cli.engine import main; "
            "r = CliRunner().invoke(main, ['--help']); print(r.exit_code, 'torch' in sys.modules, 'Example' in r.output)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "False", "True"]
