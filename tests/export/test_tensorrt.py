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


# -- build_engine against a fake tensorrt module ---------------------------------------------------
# Only the names build_engine calls, as TensorRT's Python bindings spell them; a flag that a version's
# enum lacks raises AttributeError, as the real enum would. set_timing_cache returns bool.
class _Recorder:
    def __init__(self):
        self.flags, self.network_flags, self.cache_blobs, self.fail_cache_blob = [], None, [], None
        self.cache_out = b"cache-bytes"


def _fake_trt(version, recorder):
    import types

    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    major = int(version.split(".")[0])
    ndcf = {"EXPLICIT_BATCH": 0} if major < 10 else {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 5} if major == 10 \
        else {"STRONGLY_TYPED": 5}
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(**ndcf)
    precision = {"FP16": "FP16", "INT8": "INT8"} if major < 11 else {}
    trt.BuilderFlag = types.SimpleNamespace(GPU_FALLBACK="GPU_FALLBACK", **precision)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            pass

    class Cache:
        def __init__(self, blob):
            self.blob = blob

        def serialize(self):
            return recorder.cache_out

    class Config:
        def __init__(self):
            self.cache = None

        def set_memory_pool_limit(self, pool, size):
            pass

        def set_flag(self, flag):
            recorder.flags.append(flag)

        def add_optimization_profile(self, profile):
            pass

        def create_timing_cache(self, blob):
            return Cache(bytes(blob))

        def set_timing_cache(self, cache, ignore_mismatch):
            recorder.cache_blobs.append(cache.blob)
            if cache.blob == recorder.fail_cache_blob:
                return False
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            recorder.network_flags = flags
            return object()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return types.SimpleNamespace(set_shape=lambda *a: None)

        def build_serialized_network(self, network, config):
            return b"serialized-engine"

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse(self, data):
            return True

    trt.Logger, trt.Builder, trt.OnnxParser = Logger, Builder, OnnxParser
    return trt


@pytest.mark.parametrize("version, network_flags, flags", [
    ("8.6.1", 1 << 0, ["FP16"]),            # explicit batch, precision by flag
    ("10.0.1", 1 << 5, []),                 # strongly typed, no precision flags
    ("11.4.0", 0, []),                      # strongly typed is the only mode
])
def test_build_engine_branches_per_version(monkeypatch, tmp_path, version, network_flags, flags):
    import sys

    from dagh.export.tensorrt import build_engine

    recorder = _Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt(version, recorder))
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    eo = EngineOptions(precision="fp16", input_shape=(3, 32, 32), max_batch=16, opt_batch=8)
    details = build_engine(tmp_path / "m.onnx", tmp_path / "m.engine", eo, timing_cache=tmp_path / "t.cache")
    assert recorder.network_flags == network_flags and recorder.flags == flags
    assert details["tensorrt_version"] == version and details["strongly_typed"] == (version != "8.6.1")
    assert (tmp_path / "m.engine").read_bytes() == b"serialized-engine"
    assert (tmp_path / "t.cache").read_bytes() == b"cache-bytes" and "timing_cache" not in details


def test_a_foreign_timing_cache_is_replaced_not_a_crash(monkeypatch, tmp_path):
    import sys

    from dagh.export.tensorrt import build_engine

    recorder = _Recorder()
    recorder.fail_cache_blob = b"from another GPU"
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt("10.0.1", recorder))
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    (tmp_path / "t.cache").write_bytes(b"from another GPU")
    eo = EngineOptions(precision="int8", input_shape=(3, 32, 32), max_batch=16, opt_batch=8)
    details = build_engine(tmp_path / "m.onnx", tmp_path / "m.engine", eo, timing_cache=tmp_path / "t.cache")
    assert recorder.cache_blobs == [b"from another GPU", b""]  # refused, then a fresh one
    assert "another device" in details["timing_cache"] and (tmp_path / "t.cache").read_bytes() == b"cache-bytes"
