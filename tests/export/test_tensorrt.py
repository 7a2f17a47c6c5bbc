"""TensorRT engine building: runs where tensorrt and a GPU are present, skips cleanly elsewhere."""

import pytest

from dagh.export.tensorrt import EngineOptions, trtexec_command


def test_trtexec_command_per_version():
    eo = EngineOptions(precision="int8", input_shape=(3, 32, 32), max_batch=32, opt_batch=8, dla_core=0)
    v10 = trtexec_command("model.int8.onnx", "model.int8.engine", eo, 10)
    assert "--stronglyTyped" in v10 and "--int8" not in v10
    assert "--maxShapes=images:32x3x32x32" in v10 and "--useDLACore=0" in v10
    v8 = trtexec_command("model.int8.onnx", "model.int8.engine", eo, 8)
    assert "--int8" in v8 and "--stronglyTyped" not in v8


def test_build_fp16_engine(tmp_path, tiny_checkpoint):
    trt = pytest.importorskip("tensorrt", reason="tensorrt is not installed (engine builds need a GPU machine)")
    from dagh.export.pipeline import ExportOptions, export_checkpoint
    from dagh.manifest import load_manifest

    export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(fp16=True, engine="yes", max_batch=16),
                      log=lambda m: None)
    manifest = load_manifest(tmp_path / "out")
    engine = manifest.file("engine", "fp16")
    assert engine is not None and engine.details["tensorrt_version"] == trt.__version__
    assert engine.details["profile"]["max"] == 16
