"""TensorRT engine building: runs where tensorrt and a GPU are present, skips cleanly elsewhere."""

import pytest

from dagh.export.tensorrt import EngineOptions, trtexec_command


def test_trtexec_command_per_version():
    eo = EngineOptions(precision="int8", input_shape=(3, 32, 32), max_batch=32, opt_batch=8)
    v10 = trtexec_command("model.int8.onnx", "model.int8.engine", eo, 10)
    assert "--stronglyTyped" in v10 and "--int8" not in v10
    assert "--maxShapes=images:32x3x32x32" in v10
    v8 = trtexec_command("model.int8.onnx", "model.int8.engine", eo, 8)
    assert "--int8" in v8 and "--stronglyTyped" not in v8


def test_build_fp16_engine(tmp_path, tiny_checkpoint):
    trt = pytest.importorskip("tensorrt", reason="tensorrt is not installed (engine builds need a GPU machine)")
    from dagh.export.pipeline import ExportOptions, export_checkpoint
    from dagh.export.tensorrt import EngineBuildError
    from dagh.manifest import load_manifest

    try:
        export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(fp16=True, engine="yes", max_batch=16),
                          log=lambda m: None)
    except EngineBuildError as exc:
        if "builder" in str(exc):  # tensorrt installed on a machine without a usable GPU
            pytest.skip(f"tensorrt is installed but cannot build here: {exc}")
        raise
    manifest = load_manifest(tmp_path / "out")
    engine = manifest.file("engine", "fp16")
    assert engine is not None and engine.details["tensorrt_version"] == trt.__version__
    assert engine.details["profile"]["max"] == 16


# -- build_engine against fake tensorrt modules with each real version's names (tests/fake_tensorrt.py) --------
# The model is parsed by the fake (its layers are the ONNX nodes); a name the real binding lacks raises
# AttributeError, as it would there.
@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    pytest.importorskip("torch", reason="exporting a model needs torch")
    pytest.importorskip("onnx", reason="exporting a model needs onnx")
    from dagh.export.onnx_export import export_onnx
    from dagh.runtime.preprocess import PreprocessConfig
    from dagh.train.checkpoint import load_checkpoint
    from tests.conftest import make_checkpoint

    root = tmp_path_factory.mktemp("onnx")
    ckpt = load_checkpoint(make_checkpoint(root / "m.pt", bits=12))
    export_onnx(ckpt.build_model(), PreprocessConfig(), root / "m.onnx", opset=17, metadata={})
    return root / "m.onnx"


def _build(monkeypatch, tmp_path, onnx_file, version, script=None, **options):
    from dagh.export.tensorrt import build_engine
    from tests.fake_tensorrt import install

    _, _, script = install(monkeypatch, version, script)
    eo = EngineOptions(**{"precision": "fp16", "input_shape": (3, 32, 32), "max_batch": 16, "opt_batch": 8,
                          **options})
    details = build_engine(onnx_file, tmp_path / "m.engine", eo, timing_cache=tmp_path / "t.cache",
                           log=lambda m: None)
    return details, script


@pytest.mark.parametrize("version, precision, network_flags, flags", [
    ("8.6.1", "fp16", 1 << 0, ["FP16"]),   # explicit batch (EXPLICIT_BATCH = 0), precision by flag
    ("8.6.1", "int8", 1 << 0, ["FP16", "INT8"]),  # Q/DQ layers in INT8, the layers between in FP16
    ("10.0.1", "int8", 1 << 1, []),        # strongly typed (STRONGLY_TYPED = 1 in 10.x), no precision flags
    ("10.16.1.11", "fp16", 1 << 1, []),
    ("11.4.0.106", "int8", 0, []),         # strongly typed is the only mode; no FP16 / INT8 flags exist
])
def test_build_engine_branches_per_version(monkeypatch, tmp_path, onnx_file, version, precision, network_flags,
                                           flags):
    details, script = _build(monkeypatch, tmp_path, onnx_file, version, precision=precision)
    assert script.network_flags == network_flags and script.flags == flags
    assert details["tensorrt_version"] == version and details["strongly_typed"] == (version != "8.6.1")
    assert details["profile"] == {"min": 1, "opt": 8, "max": 16} and script.profiles[0][3] == (16, 3, 32, 32)
    assert (tmp_path / "m.engine").read_bytes().startswith(b"FAKE-TENSORRT-ENGINE")
    assert (tmp_path / "t.cache").read_bytes() == f"timing-cache:{version}".encode() and "timing_cache" not in details


def test_the_fakes_fail_a_flag_that_a_version_lacks(monkeypatch, tmp_path, onnx_file):
    """The check that the fakes can catch a broken branch: the 8.6 path run against TensorRT 11's names
    fails, because 11 has neither NetworkDefinitionCreationFlag.EXPLICIT_BATCH nor BuilderFlag.FP16."""
    import dagh.export.tensorrt as builder

    monkeypatch.setattr(builder, "tensorrt_major", lambda trt: 8)
    with pytest.raises(AttributeError, match="EXPLICIT_BATCH"):
        _build(monkeypatch, tmp_path, onnx_file, "11.4.0.106")


def test_a_foreign_timing_cache_is_replaced_not_a_crash(monkeypatch, tmp_path, onnx_file):
    from tests.fake_tensorrt import Script

    (tmp_path / "t.cache").write_bytes(b"from another GPU")
    details, script = _build(monkeypatch, tmp_path, onnx_file, "10.0.1", Script(foreign_cache=b"from another GPU"),
                             precision="int8")
    assert script.cache_blobs == [b"from another GPU", b""]  # refused, then a fresh one
    assert "another device" in details["timing_cache"] and (tmp_path / "t.cache").read_bytes() == b"timing-cache:10.0.1"


def test_an_unreadable_timing_cache_is_replaced_too(monkeypatch, tmp_path, onnx_file):
    from tests.fake_tensorrt import Script

    (tmp_path / "t.cache").write_bytes(b"garbage")
    details, script = _build(monkeypatch, tmp_path, onnx_file, "8.6.1", Script(unreadable_cache=b"garbage"))
    assert script.cache_blobs == [b""] and "another device" in details["timing_cache"]


def test_a_failed_build_is_an_error_and_writes_nothing(monkeypatch, tmp_path, onnx_file):
    from dagh.export.tensorrt import EngineBuildError
    from tests.fake_tensorrt import Script

    with pytest.raises(EngineBuildError, match="failed to build"):
        _build(monkeypatch, tmp_path, onnx_file, "10.16.1.11", Script(build_fails=True))
    assert not (tmp_path / "m.engine").exists()


# -- DLA ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["8.6.1", "10.0.1"])
def test_dla_engines_have_a_static_batch_and_record_the_placement_tensorrt_reported(monkeypatch, tmp_path,
                                                                                   onnx_file, version):
    from tests.fake_tensorrt import Script

    log = ("---------- Layers Running on DLA ----------", "[DlaLayer] {ForeignNode[/conv1...Relu]}",
           "---------- Layers Running on GPU ----------", "[GpuLayer] SHUFFLE: /Flatten")
    script = Script(dla_cores=2, dla_refuses=("Flatten",), build_log=log)
    details, script = _build(monkeypatch, tmp_path, onnx_file, version, script, dla_core=1, dla_batch=4,
                             gpu_fallback=True)
    assert script.profiles[0][1:] == ((4, 3, 32, 32),) * 3  # min = opt = max
    assert script.dla_core == 1 and script.device_type.name == "DLA" and "GPU_FALLBACK" in script.flags
    # DLA is built weakly typed with the FP16 flag, on 10.x as well (as NVIDIA documents DLA builds)
    assert script.network_flags == (1 if version == "8.6.1" else 0) and "FP16" in script.flags
    assert details["dla"]["confirmed"] and not details["strongly_typed"]
    dla = details["dla"]
    assert dla["dla_layers"] == ["{ForeignNode[/conv1...Relu]}"] and dla["gpu_layers"] == ["SHUFFLE: /Flatten"]
    assert dla["source"].startswith("TensorRT build log") and details["profile"] == {"min": 4, "opt": 4, "max": 4}


def test_dla_refuses_layers_it_cannot_run_without_fallback(monkeypatch, tmp_path, onnx_file):
    from dagh.export.tensorrt import EngineBuildError
    from tests.fake_tensorrt import Script

    with pytest.raises(EngineBuildError, match="cannot run on DLA.*--dla-fallback"):
        _build(monkeypatch, tmp_path, onnx_file, "10.0.1", Script(dla_cores=1, dla_refuses=("Flatten",)), dla_core=0)
    assert not (tmp_path / "m.engine").exists()


def test_dla_is_refused_where_there_is_none_and_never_claimed_when_nothing_ran_there(monkeypatch, tmp_path,
                                                                                      onnx_file):
    from dagh.export.tensorrt import EngineBuildError
    from tests.fake_tensorrt import Script

    with pytest.raises(EngineBuildError, match="reports no DLA core"):  # an x86 GPU, or TensorRT 10.8 to 11.3
        _build(monkeypatch, tmp_path, onnx_file, "10.16.1.11", Script(dla_cores=0), dla_core=0)
    everything_on_gpu = Script(dla_cores=1, build_log=("[GpuLayer] CONVOLUTION: /conv1", "[GpuLayer] RELU: /relu"))
    with pytest.raises(EngineBuildError, match="placed no layer on DLA"):
        _build(monkeypatch, tmp_path, onnx_file, "8.6.1", everything_on_gpu, dla_core=0, gpu_fallback=True)
    assert not (tmp_path / "m.engine").exists()


def test_dla_placement_without_tensorrts_report_is_recorded_as_predicted(monkeypatch, tmp_path, onnx_file):
    from tests.fake_tensorrt import Script

    details, _ = _build(monkeypatch, tmp_path, onnx_file, "10.0.1", Script(dla_cores=1, dla_refuses=("Flatten",)),
                        dla_core=0, gpu_fallback=True)
    dla = details["dla"]
    assert not dla["confirmed"] and "can_run_on_DLA" in dla["source"]
    assert dla["dla_layers"] and any("Flatten" in name for name in dla["gpu_layers"])


def test_trtexec_commands_for_11_and_dla():
    eo = EngineOptions(precision="int8", input_shape=(3, 32, 32), max_batch=32, opt_batch=8)
    v11 = trtexec_command("model.int8.onnx", "model.int8.engine", eo, 11)
    assert "--stronglyTyped" not in v11 and "--int8" not in v11 and "--fp16" not in v11
    dla = EngineOptions(precision="fp16", input_shape=(3, 32, 32), dla_core=0, dla_batch=2)
    command = trtexec_command("model.fp16.onnx", "model.fp16.dla0.engine", dla, 10)
    assert "--minShapes=images:2x3x32x32" in command and "--maxShapes=images:2x3x32x32" in command
    assert "--useDLACore=0" in command and "--allowGPUFallback" not in command
    assert "--fp16" in command and "--stronglyTyped" not in command
