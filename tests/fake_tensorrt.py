"""Fake ``tensorrt`` and ``cuda.bindings.runtime`` modules, one per real version, for tests without a GPU.

Each fake object exposes only the names its real class has in that version's binding wheel
(tests/export/tensorrt_names/*.json, read from the wheels by extract.py there); asking for any
other name raises AttributeError, as the real binding would. Enum members and their values are
the real ones. What the fakes *do* is scripted by a :class:`Script`.

The fake builder "compiles" an ONNX file by remembering its path, profile and precision in the
serialized engine; the fake engine runs that ONNX with onnxruntime, so its codes are the model's
(``Script.flip`` flips a fraction of them, as a broken engine would). "Device" memory is host
memory, so the runner's copies are real.
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import json
import sys
import types
from pathlib import Path

import numpy as np

NAMES = Path(__file__).parent / "export" / "tensorrt_names"
VERSIONS = ("8.6.1", "10.0.1", "10.16.1.11", "11.4.0.106")
ENGINE_MAGIC = b"FAKE-TENSORRT-ENGINE\n"


def names(version: str) -> dict:
    return json.loads((NAMES / f"tensorrt-{version}.json").read_text())


@dataclasses.dataclass
class Script:
    """What the fake TensorRT does, and what it saw."""

    dla_cores: int = 0
    dla_refuses: tuple[str, ...] = ()        # op types can_run_on_DLA says no to
    build_log: tuple[str, ...] = ()          # INFO messages the builder logs (e.g. "[DlaLayer] ...")
    build_fails: bool = False
    foreign_cache: bytes | None = None       # a timing cache blob that does not attach
    unreadable_cache: bytes | None = None    # a timing cache blob TensorRT cannot read at all
    gpu_name: str | None = None              # what cudaGetDeviceProperties reports (None: no device)
    flip: float = 0.0                        # fraction of code bits the engine flips
    refuse_shape: bool = False
    io_dtype: str = "FLOAT"
    # seen:
    network_flags: int | None = None
    flags: list = dataclasses.field(default_factory=list)
    profiles: list = dataclasses.field(default_factory=list)
    cache_blobs: list = dataclasses.field(default_factory=list)
    device_type: object = None
    dla_core: int | None = None
    input_shapes: list = dataclasses.field(default_factory=list)
    runtime_dla_core: int | None = None


def _strict(real: str, allowed: set[str], version: str):
    """A base class whose instances have exactly ``allowed`` public names (those of tensorrt.<real>)."""

    class Strict:
        def __getattribute__(self, name):
            if not name.startswith("_") and name not in allowed:
                raise AttributeError(f"'tensorrt.{real}' object has no attribute '{name}' (TensorRT {version})")
            return object.__getattribute__(self, name)

        def __setattr__(self, name, value):
            if not name.startswith("_") and name not in allowed:
                raise AttributeError(f"'tensorrt.{real}' object has no attribute '{name}' (TensorRT {version})")
            object.__setattr__(self, name, value)

    Strict.__name__ = real
    return Strict


class _Enum(enum.Enum):
    """A pybind11 scoped enum: int() gives the value, str() 'DataType.HALF'; no ordering, not equal to ints."""

    def __int__(self):
        return self.value

    def __str__(self):
        return f"{type(self).__name__}.{self.name}"

    __format__ = lambda self, spec: str(self)  # noqa: E731


def make_tensorrt(version: str, script: Script) -> types.ModuleType:
    """The fake ``tensorrt`` module of ``version`` (one of VERSIONS), behaving as ``script`` says."""
    table = names(version)
    classes, enums = table["classes"], table["enums"]
    base = {name: _strict(name, set(members), version) for name, members in classes.items()}
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    module_names = set(table["module"])
    for enum_name, members in enums.items():
        if "." not in enum_name:
            setattr(trt, enum_name, _Enum(enum_name, members))
    severity = _Enum("Severity", enums["Logger.Severity"])
    major = int(version.split(".")[0])

    class ILogger:
        Severity = severity

        def __init__(self):  # a subclass that skips this is refused by Builder, as pybind11 refuses it
            self._initialized = True

    class Logger(ILogger, base["Logger"]):
        def __init__(self, min_severity=severity.WARNING):
            ILogger.__init__(self)
            self._min = min_severity

        def log(self, level, message):
            pass

    for member in severity:
        setattr(Logger, member.name, member)

    class Layer(base["ILayer"]):
        def __init__(self, name, op):
            self.name, self._op = name, op

    class Network(base["INetworkDefinition"]):
        def __init__(self, flags):
            self._flags, self._layers, self._onnx = flags, [], None

        @property
        def num_layers(self):
            return len(self._layers)

        def get_layer(self, index):
            return self._layers[index]

    class OnnxParser(base["OnnxParser"]):
        def __init__(self, network, logger):
            self._network = network

        @property
        def num_errors(self):
            return 0

        def get_error(self, index):
            return None

        def parse(self, model: bytes):
            nodes = onnx_nodes(model)
            self._network._layers = [Layer(name or f"{op}_{i}", op) for i, (name, op) in enumerate(nodes)]
            self._network._onnx = model
            return bool(nodes)

    class Cache(base["ITimingCache"]):
        def __init__(self, blob):
            self._blob = bytes(blob)

        def serialize(self):
            return b"timing-cache:" + version.encode()

    class Profile(base["IOptimizationProfile"]):
        def set_shape(self, name, min, opt, max):  # noqa: A002 - the binding's keyword names
            if name != "images":
                raise RuntimeError(f"no input tensor named {name!r}")
            script.profiles.append((name, tuple(min), tuple(opt), tuple(max)))
            self._shapes = (tuple(min), tuple(opt), tuple(max))

    class Config(base["IBuilderConfig"]):
        def __init__(self):
            self._cache, self._profiles = None, []
            object.__setattr__(self, "_device", trt.DeviceType.GPU)

        def set_memory_pool_limit(self, pool, size):
            assert isinstance(pool, trt.MemoryPoolType)

        def set_flag(self, flag):
            assert isinstance(flag, trt.BuilderFlag)
            script.flags.append(flag.name)

        def add_optimization_profile(self, profile):
            self._profiles.append(profile)
            return 0

        def create_timing_cache(self, serialized_timing_cache):
            if script.unreadable_cache is not None and bytes(serialized_timing_cache) == script.unreadable_cache:
                return None  # a corrupt blob: the real binding returns None
            return Cache(serialized_timing_cache)

        def set_timing_cache(self, cache, ignore_mismatch):
            script.cache_blobs.append(cache._blob)
            if script.foreign_cache is not None and cache._blob == script.foreign_cache:
                return False
            self._cache = cache
            return True

        def get_timing_cache(self):
            return self._cache

        @property
        def default_device_type(self):
            return self._device

        @default_device_type.setter
        def default_device_type(self, value):
            object.__setattr__(self, "_device", value)
            script.device_type = value

        @property
        def DLA_core(self):  # noqa: N802 - the binding's name
            return script.dla_core

        @DLA_core.setter
        def DLA_core(self, value):  # noqa: N802
            script.dla_core = value

        def can_run_on_DLA(self, layer):  # noqa: N802
            # DLA runs no explicit quantization: Q/DQ layers never go there
            return layer._op not in script.dla_refuses + ("QuantizeLinear", "DequantizeLinear")

    class Builder(base["Builder"]):
        def __init__(self, logger):
            if not getattr(logger, "_initialized", False):
                raise TypeError("tensorrt.tensorrt.ILogger.__init__() must be called when overriding __init__")
            self._logger = logger

        @property
        def num_DLA_cores(self):  # noqa: N802
            return script.dla_cores

        def create_network(self, flags=0):
            script.network_flags = flags
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            for message in script.build_log:
                self._logger.log(severity.INFO, message)
            if script.build_fails:
                self._logger.log(severity.ERROR, "fake build failure")
                return None
            (low, _, high) = config._profiles[0]._shapes
            header = {"version": version, "min": low[0], "max": high[0],
                      "dla_core": script.dla_core if config._device == trt.DeviceType.DLA else None}
            return ENGINE_MAGIC + json.dumps(header).encode() + b"\n" + network._onnx

    class Context(base["IExecutionContext"]):
        def __init__(self, engine):
            self._engine, self._addresses, self._shape = engine, {}, None

        def set_tensor_address(self, name, memory):
            self._addresses[name] = int(memory)
            return True

        def set_input_shape(self, name, shape):
            script.input_shapes.append(tuple(shape))
            ok = not script.refuse_shape and self._engine._min <= shape[0] <= self._engine._max
            self._shape = tuple(shape) if ok else None
            return ok

        def execute_async_v3(self, stream_handle):
            n = self._shape[0]

            def view(name, count):
                return np.frombuffer((ctypes.c_float * count).from_address(self._addresses[name]), np.float32)

            images = view("images", n * int(np.prod(self._shape[1:]))).reshape(self._shape)
            codes, h = self._engine._run(images)
            view("h", h.size)[:] = h.ravel()
            view("codes", codes.size)[:] = codes.ravel()
            return True

    class Engine(base["ICudaEngine"]):
        def __init__(self, header, onnx_bytes):
            import onnxruntime as ort

            self._min, self._max = header["min"], header["max"]
            self._session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
            shape = self._session.get_inputs()[0].shape
            self._input = tuple(int(v) for v in shape[1:])
            self._bits = int(self._session.get_outputs()[0].shape[1])

        def _run(self, images):
            codes, h = self._session.run(["codes", "h"], {"images": images})
            if script.flip:
                count = int(round(script.flip * codes.size))
                flat = codes.reshape(-1)
                flat[:count] = -flat[:count]
            return codes.astype(np.float32), h.astype(np.float32)

        def get_tensor_dtype(self, name):
            if name not in ("images", "codes", "h"):
                raise RuntimeError(f"no tensor named {name!r}")
            return getattr(trt.DataType, script.io_dtype) if name == "h" else trt.DataType.FLOAT

        def create_execution_context(self):
            return Context(self)

        def get_tensor_profile_shape(self, name, profile_index):
            return (self._min, *self._input), (self._min, *self._input), (self._max, *self._input)

        def get_tensor_shape(self, name):
            return (-1, self._bits)

    class Runtime(base["Runtime"]):
        def __init__(self, logger):
            pass

        @property
        def num_DLA_cores(self):  # noqa: N802
            return script.dla_cores

        @property
        def DLA_core(self):  # noqa: N802
            return script.runtime_dla_core

        @DLA_core.setter
        def DLA_core(self, value):  # noqa: N802
            script.runtime_dla_core = value

        def deserialize_cuda_engine(self, serialized_engine):
            data = bytes(serialized_engine)
            if not data.startswith(ENGINE_MAGIC):
                return None
            header_line, onnx_bytes = data[len(ENGINE_MAGIC):].split(b"\n", 1)
            header = json.loads(header_line)
            if header["version"] != version:  # a real runtime refuses another version's engine
                return None
            return Engine(header, onnx_bytes)

    for name, value in {"ILogger": ILogger, "Logger": Logger, "Builder": Builder, "OnnxParser": OnnxParser,
                        "Runtime": Runtime}.items():
        assert name in module_names, f"{name} is not in tensorrt {version}"
        setattr(trt, name, value)
    trt._major = major
    return trt


def _fields(data: bytes):
    """(field number, wire type, value) of a protobuf message; length-delimited values as bytes."""
    def varint(i):
        shift = value = 0
        while True:
            byte = data[i]
            value |= (byte & 0x7F) << shift
            i += 1
            if byte < 0x80:
                return value, i
            shift += 7

    i = 0
    while i < len(data):
        key, i = varint(i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(i)
        elif wire == 2:
            length, i = varint(i)
            value, i = data[i:i + length], i + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = data[i:i + size], i + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def onnx_nodes(model: bytes) -> list[tuple[str, str]]:
    """(name, op_type) of each node of an ONNX model (ModelProto.graph = 7, GraphProto.node = 1,
    NodeProto.name = 3, op_type = 4), read without the onnx package, which the torch-free env lacks."""
    nodes = []
    for number, wire, graph in _fields(model):
        if number == 7 and wire == 2:
            for field, kind, node in _fields(graph):
                if field == 1 and kind == 2:
                    parts = {f: v for f, k, v in _fields(node) if f in (3, 4) and k == 2}
                    nodes.append((parts.get(3, b"").decode(), parts.get(4, b"").decode()))
    return nodes


class FakeCuda:
    """cuda.bindings.runtime over ctypes buffers; counts live allocations and streams."""

    def __init__(self, gpu_name: str | None = None):
        self.buffers, self.streams, self.gpu_name = {}, set(), gpu_name
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
        if self.gpu_name is None:
            return 100, None  # cudaErrorNoDevice: gpu_info reports no GPU
        return 0, types.SimpleNamespace(name=self.gpu_name.encode(), major=8, minor=7)


def write_engine(path: Path, onnx_path: Path, version: str, min_batch: int = 1, max_batch: int = 4) -> Path:
    """A serialized fake engine of ``version`` that runs ``onnx_path`` with batches min..max."""
    header = {"version": version, "min": min_batch, "max": max_batch, "dla_core": None}
    path.write_bytes(ENGINE_MAGIC + json.dumps(header).encode() + b"\n" + Path(onnx_path).read_bytes())
    return path


def install(monkeypatch, version: str, script: Script | None = None) -> tuple[types.ModuleType, FakeCuda, Script]:
    """Put a fake tensorrt of ``version`` and a fake cuda.bindings.runtime into sys.modules."""
    script = script or Script()
    trt = make_tensorrt(version, script)
    cudart = FakeCuda(script.gpu_name)
    presence = json.loads((NAMES / "cuda-python.json").read_text())
    cuda, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    runtime = types.ModuleType("cuda.bindings.runtime")
    for name in [n for n in dir(cudart) if n.startswith("cuda")]:
        assert _cuda_has(presence, name), f"cuda.bindings.runtime has no {name}"
        setattr(runtime, name, getattr(cudart, name))
    cuda.bindings, bindings.runtime = bindings, runtime
    monkeypatch.setitem(sys.modules, "cuda", cuda)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", runtime)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt, cudart, script


def _cuda_has(presence: dict, name: str) -> bool:
    """True when every recorded cuda-python release that has cuda.bindings.runtime has ``name`` there."""
    found = [r["cuda.bindings.runtime"].get(name, False) for r in presence["releases"].values()
             if "cuda.bindings.runtime" in r]
    return bool(found) and all(found)
