"""TensorRTRunner against fake `tensorrt` and `cuda.bindings.runtime` modules (tests/fake_tensorrt.py).

The fakes have exactly the names of each real version's bindings; the fake engine runs the export's
FP32 ONNX with onnxruntime, and "device" memory is host memory, so the copies are real.
"""

import numpy as np
import pytest

from dagh.errors import DaghError
from tests.fake_tensorrt import VERSIONS, Script, install, write_engine


@pytest.fixture
def engine(tmp_path, export_dir):
    return tmp_path / "model.engine", export_dir / "model.onnx"


def runner_for(path, version):
    from dagh.runtime.encode.tensorrt_runner import TensorRTRunner

    return TensorRTRunner(path, {"tensorrt_version": version, "gpu_name": None})


def reference(onnx_path, images):
    from dagh.runtime.encode.onnxruntime_runner import OnnxRunner

    return OnnxRunner(onnx_path).run(images)


@pytest.mark.parametrize("version", VERSIONS)
def test_batches_beyond_the_profile_are_split_and_results_are_the_engines(monkeypatch, engine, rng, version):
    path, onnx = engine
    _, cudart, script = install(monkeypatch, version)
    write_engine(path, onnx, version, max_batch=4)
    images = rng.standard_normal((10, 3, 32, 32)).astype(np.float32)
    with runner_for(path, version) as runner:
        codes, h = runner.run(images)
    want_codes, want_h = reference(onnx, images)
    assert np.array_equal(codes, want_codes) and np.allclose(h, want_h, atol=1e-5)
    assert [s[0] for s in script.input_shapes] == [4, 4, 2]
    assert cudart.buffers == {} and cudart.streams == set()  # close() freed all six buffers and the stream


def test_a_static_batch_engine_pads_short_batches(monkeypatch, engine, rng):
    path, onnx = engine
    _, _, script = install(monkeypatch, "10.0.1")
    write_engine(path, onnx, "10.0.1", min_batch=4, max_batch=4)  # a DLA engine's profile
    images = rng.standard_normal((6, 3, 32, 32)).astype(np.float32)
    with runner_for(path, "10.0.1") as runner:
        codes, _ = runner.run(images)
    assert np.array_equal(codes, reference(onnx, images)[0]) and len(codes) == 6
    assert [s[0] for s in script.input_shapes] == [4, 4]


def test_a_refused_input_shape_is_an_error_not_garbage(monkeypatch, engine, rng):
    path, onnx = engine
    install(monkeypatch, "8.6.1", Script(refuse_shape=True))
    write_engine(path, onnx, "8.6.1")
    with runner_for(path, "8.6.1") as runner, pytest.raises(DaghError, match="refused an input of shape"):
        runner.run(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))


def test_wrong_input_dtype_or_shape_is_refused(monkeypatch, engine):
    path, onnx = engine
    install(monkeypatch, "11.4.0.106")
    write_engine(path, onnx, "11.4.0.106")
    with runner_for(path, "11.4.0.106") as runner:
        with pytest.raises(DaghError, match="float32"):
            runner.run(np.zeros((2, 3, 32, 32), np.float64))
        with pytest.raises(DaghError, match="float32"):
            runner.run(np.zeros((2, 3, 33, 32), np.float32))


def test_an_engine_with_other_io_dtypes_or_version_is_refused(monkeypatch, engine):
    from dagh.runtime.encode.tensorrt_runner import EngineMismatchError

    path, onnx = engine
    _, cudart, _ = install(monkeypatch, "10.16.1.11")
    write_engine(path, onnx, "10.16.1.11")
    with pytest.raises(EngineMismatchError, match="TensorRT 8.6.1.*dagh-engine"):
        runner_for(path, "8.6.1")
    write_engine(path, onnx, "10.0.1")  # what the manifest says and what the file is disagree
    with pytest.raises(EngineMismatchError, match="could not deserialize"):
        runner_for(path, "10.16.1.11")
    install(monkeypatch, "10.16.1.11", Script(io_dtype="HALF"))
    write_engine(path, onnx, "10.16.1.11")
    with pytest.raises(EngineMismatchError, match="'h' is DataType.HALF"):
        runner_for(path, "10.16.1.11")
    assert cudart.buffers == {} and cudart.streams == set()


def test_close_is_idempotent_and_a_closed_runner_refuses_work(monkeypatch, engine):
    path, onnx = engine
    _, cudart, _ = install(monkeypatch, "10.0.1")
    write_engine(path, onnx, "10.0.1")
    runner = runner_for(path, "10.0.1")
    assert len(cudart.buffers) == 6 and len(cudart.streams) == 1
    runner.close()
    runner.close()
    assert cudart.buffers == {} and cudart.streams == set()
    with pytest.raises(DaghError, match="closed"):
        runner.run(np.zeros((1, 3, 32, 32), np.float32))
