"""The Encoder's TensorRT backend: a serialized engine run with the TensorRT Python API and cuda-python.

tensorrt and cuda-python are imported when a runner is made, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dagh._optional import require
from dagh.errors import DaghError

IO_TENSORS = ("images", "codes", "h")


class EngineMismatchError(DaghError):
    """A TensorRT engine was built by another TensorRT version or for another GPU."""


class TensorRTRunner:
    """A TensorRT engine run through the tensor-address API (TensorRT 8.6, 10, 11) with cuda-python.

    Device buffers and pinned host buffers are sized for the engine profile's
    maximum batch; larger inputs are split into batches of that size, and a batch
    below the profile's minimum (a DLA engine's static batch) is padded with zeros.
    ``close()`` (or ``with``) frees them and the stream.
    """

    def __init__(self, engine_path: Path, recorded: dict[str, Any]):
        trt = require("tensorrt", extra="tensorrt", purpose="Encoder with backend='tensorrt'")
        cudart = require("cuda.bindings.runtime", extra="tensorrt", purpose="Encoder with backend='tensorrt'")
        from dagh.runtime.device import engine_mismatch, gpu_info

        mismatch = engine_mismatch(engine_path.name, recorded, str(trt.__version__), gpu_info()["gpu_name"])
        if mismatch:
            raise EngineMismatchError(mismatch)
        self.trt, self.cudart = trt, cudart
        self.stream, self.device, self.host = None, {}, {}
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        dla_core = recorded.get("dla_core")
        if dla_core is not None:  # a DLA engine runs on the core it was built for
            if not 0 <= int(dla_core) < int(runtime.num_DLA_cores):
                raise EngineMismatchError(f"{engine_path.name} runs on DLA core {dla_core}, which this device lacks "
                                          f"({runtime.num_DLA_cores} DLA cores); use the GPU engine")
            runtime.DLA_core = int(dla_core)
        self.engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise EngineMismatchError(f"TensorRT could not deserialize {engine_path.name}")
        for name in IO_TENSORS:  # the buffers below are float32; an engine built otherwise is refused
            dtype = self.engine.get_tensor_dtype(name)
            if dtype != trt.DataType.FLOAT:
                raise EngineMismatchError(f"{engine_path.name}: tensor {name!r} is {dtype}, dagh's engines have "
                                          "float32 inputs and outputs; rebuild it from the export's ONNX")
        self.context = self.engine.create_execution_context()
        min_shape, _, max_shape = self.engine.get_tensor_profile_shape("images", 0)
        self.max_batch = int(max_shape[0])
        self.min_batch = int(min_shape[0])  # a DLA engine's batch is static: min = max; short batches are padded
        self.input_shape = tuple(int(v) for v in max_shape[1:])
        self.bits = int(self.engine.get_tensor_shape("codes")[-1])
        sizes = {"images": self.max_batch * int(np.prod(self.input_shape)) * 4,
                 "codes": self.max_batch * self.bits * 4, "h": self.max_batch * self.bits * 4}
        try:
            self.stream = self._check(cudart.cudaStreamCreate(), "cudaStreamCreate")
            for name, size in sizes.items():
                self.device[name] = self._check(cudart.cudaMalloc(size), "cudaMalloc")
                self.host[name] = self._check(cudart.cudaMallocHost(size), "cudaMallocHost")
                if not self.context.set_tensor_address(name, int(self.device[name])):
                    raise DaghError(f"TensorRT refused the device address of tensor {name!r}")
        except BaseException:
            self.close()
            raise

    def _check(self, result, call: str = "CUDA call"):
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise DaghError(f"{call} failed with CUDA error {err}")
        return values[0] if values else None

    def _host_array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        import ctypes

        count = int(np.prod(shape))
        buffer = (ctypes.c_float * count).from_address(int(self.host[name]))
        return np.frombuffer(buffer, dtype=np.float32, count=count).reshape(shape)

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.stream is None:
            raise DaghError("this TensorRT runner is closed")
        if images.dtype != np.float32 or tuple(images.shape[1:]) != self.input_shape:
            raise DaghError(f"the engine takes float32 [N, {', '.join(map(str, self.input_shape))}] batches, "
                            f"got {images.dtype} {list(images.shape)}")
        codes, hs = [], []
        kind = self.cudart.cudaMemcpyKind
        for start in range(0, len(images), self.max_batch):
            batch = images[start:start + self.max_batch]
            n = len(batch)
            run_n = max(n, self.min_batch)
            host = self._host_array("images", (run_n, *self.input_shape))
            host[:n] = batch
            host[n:] = 0.0
            self._check(self.cudart.cudaMemcpyAsync(self.device["images"], self.host["images"], host.nbytes,
                                                    kind.cudaMemcpyHostToDevice, self.stream), "cudaMemcpyAsync")
            if not self.context.set_input_shape("images", (run_n, *self.input_shape)):
                raise DaghError(f"the engine refused an input of shape {(run_n, *self.input_shape)} (its profile: "
                                f"batch {self.min_batch}..{self.max_batch})")
            if not self.context.execute_async_v3(self.stream):
                raise DaghError("TensorRT execution failed")
            for name in ("codes", "h"):
                self._check(self.cudart.cudaMemcpyAsync(self.host[name], self.device[name], n * self.bits * 4,
                                                        kind.cudaMemcpyDeviceToHost, self.stream), "cudaMemcpyAsync")
            self._check(self.cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
            codes.append(self._host_array("codes", (n, self.bits)).copy())
            hs.append(self._host_array("h", (n, self.bits)).copy())
        return np.concatenate(codes), np.concatenate(hs)

    def close(self) -> None:
        """Free the device and pinned host buffers and destroy the stream (idempotent)."""
        for pointer in self.device.values():
            self.cudart.cudaFree(pointer)
        for pointer in self.host.values():
            self.cudart.cudaFreeHost(pointer)
        self.device, self.host = {}, {}
        if self.stream is not None:
            self.cudart.cudaStreamDestroy(self.stream)
            self.stream = None

    def __enter__(self) -> TensorRTRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
