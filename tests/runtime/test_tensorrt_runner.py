"""TensorRTRunner against fake `tensorrt` and `cuda.bindings.runtime` modules.

The fakes expose only the names the runner calls, spelled as in TensorRT 8.6-11's Python bindings
(Logger, Runtime.deserialize_cuda_engine, DataType.FLOAT, ICudaEngine.get_tensor_dtype /
get_tensor_profile_shape / get_tensor_shape / create_execution_context, IExecutionContext
.set_tensor_address / set_input_shape (both return bool) / execute_async_v3) and cuda-python's
runtime (cudaStreamCreate, cudaMalloc, cudaMallocHost, cudaMemcpyAsync, cudaStreamSynchronize,
cudaFree, cudaFreeHost, cudaStreamDestroy, cudaMemcpyKind; calls return (error, value...)).
"Device" memory is host memory here, so the copies and the fake engine's arithmetic are real.
"""

import ctypes
import sys
import types

import numpy as np
import pytest

from dagh.errors import DaghError

BITS, SIZE, MAX_BATCH = 8, 4, 4


class FakeCuda:
    """cuda.bindings.runtime over ctypes buffers; counts live allocations and streams."""

    def __init__(self):
        self.buffers, self.streams = {}, set()
        self.cudaMemcpyKind = types.SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)

    def _alloc(self, size):
        buffer = (ctypes.c_char * size)()
        self.buffers[ctypes.addressof(buffer)] = buffer
        return 0, ctypes.addressof(buffer)

    cudaMalloc = cudaMallocHost = _alloc

    def cudaFree(self, pointer):
        del self.buffers[int(pointer)]
        return (0,)

    cudaFreeHost = cudaFree

    def cudaStreamCreate(self):
        stream = len(self.streams) + 1000
        self.streams.add(stream)
        return 0, stream

    def cudaStreamDestroy(self, stream):
        self.streams.remove(stream)
        return (0,)

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):
        assert stream in self.streams and kind in (1, 2)
        ctypes.memmove(int(dst), int(src), count)
        return (0,)

    def cudaStreamSynchronize(self, stream):
        return (0,)

    def cudaGetDeviceProperties(self, device):
        return 100, None  # cudaErrorNoDevice: gpu_info reports no GPU


class FakeContext:
    def __init__(self, engine):
        self.engine, self.addresses, self.shapes, self.refuse_shape = engine, {}, [], False

    def set_tensor_address(self, name, pointer):
        self.addresses[name] = pointer
        return True

    def set_input_shape(self, name, shape):
        self.shapes.append(tuple(shape))
        return not self.refuse_shape and 1 <= shape[0] <= MAX_BATCH

    def execute_async_v3(self, stream):
        n = self.shapes[-1][0]
        count = n * 3 * SIZE * SIZE

        def view(name, count):
            return np.frombuffer((ctypes.c_float * count).from_address(self.addresses[name]), np.float32)

        images = view("images", count).reshape(n, -1)
        h = images[:, :BITS] - 0.5
        view("h", n * BITS)[:] = h.ravel()
        view("codes", n * BITS)[:] = np.where(h >= 0, 1.0, -1.0).ravel()
        return True


def fake_tensorrt(version="10.0.1", dtype="FLOAT"):
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.DataType = types.SimpleNamespace(FLOAT="FLOAT", HALF="HALF")

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            self.severity = severity

    class Engine:
        def __init__(self):
            self.contexts = []

        def get_tensor_dtype(self, name):
            return getattr(trt.DataType, dtype) if name == "h" else trt.DataType.FLOAT

        def create_execution_context(self):
            self.contexts.append(FakeContext(self))
            return self.contexts[-1]

        def get_tensor_profile_shape(self, name, profile):
            return (1, 3, SIZE, SIZE), (2, 3, SIZE, SIZE), (MAX_BATCH, 3, SIZE, SIZE)

        def get_tensor_shape(self, name):
            return (-1, BITS)

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, data):
            return Engine() if data == b"engine" else None

    trt.Logger, trt.Runtime = Logger, Runtime
    return trt


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    cudart = FakeCuda()
    cuda, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    runtime = types.ModuleType("cuda.bindings.runtime")
    for name in [n for n in dir(cudart) if n.startswith("cuda")]:
        setattr(runtime, name, getattr(cudart, name))
    cuda.bindings, bindings.runtime = bindings, runtime
    monkeypatch.setitem(sys.modules, "cuda", cuda)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", runtime)
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt())
    engine = tmp_path / "model.fp16.engine"
    engine.write_bytes(b"engine")
    return cudart, engine


def runner_for(engine, version="10.0.1"):
    from dagh.runtime.encode.tensorrt_runner import TensorRTRunner

    return TensorRTRunner(engine, {"tensorrt_version": version, "gpu_name": None})


def test_batches_beyond_the_profile_are_split_and_results_are_the_engines(fakes, rng):
    cudart, engine = fakes
    images = rng.random((10, 3, SIZE, SIZE), dtype=np.float32)
    with runner_for(engine) as runner:
        codes, h = runner.run(images)
        shapes = runner.context.shapes
    expected = images.reshape(10, -1)[:, :BITS] - 0.5
    assert np.array_equal(h, expected) and np.array_equal(codes, np.where(expected >= 0, 1, -1))
    assert [s[0] for s in shapes] == [4, 4, 2]
    assert cudart.buffers == {} and cudart.streams == set()  # close() freed all six buffers and the stream


def test_a_refused_input_shape_is_an_error_not_garbage(fakes, rng):
    _, engine = fakes
    with runner_for(engine) as runner:
        runner.context.refuse_shape = True
        with pytest.raises(DaghError, match="refused an input of shape"):
            runner.run(rng.random((2, 3, SIZE, SIZE), dtype=np.float32))


def test_wrong_input_dtype_or_shape_is_refused(fakes):
    _, engine = fakes
    with runner_for(engine) as runner:
        with pytest.raises(DaghError, match="float32"):
            runner.run(np.zeros((2, 3, SIZE, SIZE), np.float64))
        with pytest.raises(DaghError, match="float32"):
            runner.run(np.zeros((2, 3, SIZE + 1, SIZE), np.float32))


def test_an_engine_with_other_io_dtypes_or_version_is_refused(fakes, monkeypatch):
    from dagh.runtime.encode.tensorrt_runner import EngineMismatchError

    cudart, engine = fakes
    with pytest.raises(EngineMismatchError, match="TensorRT 8.6.1"):
        runner_for(engine, version="8.6.1")
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(dtype="HALF"))
    with pytest.raises(EngineMismatchError, match="'h' is HALF"):
        runner_for(engine)
    assert cudart.buffers == {} and cudart.streams == set()


def test_close_is_idempotent_and_a_closed_runner_refuses_work(fakes):
    cudart, engine = fakes
    runner = runner_for(engine)
    assert len(cudart.buffers) == 6 and len(cudart.streams) == 1
    runner.close()
    runner.close()
    assert cudart.buffers == {} and cudart.streams == set()
    with pytest.raises(DaghError, match="closed"):
        runner.run(np.zeros((1, 3, SIZE, SIZE), np.float32))
