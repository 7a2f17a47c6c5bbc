"""The Encoder's TensorRT backend: a serialized engine run with the TensorRT Python API and cuda-python.

tensorrt and cuda-python are imported when a runner is made, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dagh._optional import require
from dagh.errors import DaghError


class EngineMismatchError(DaghError):
    """A TensorRT engine was built by another TensorRT version or for another GPU."""


class TensorRTRunner:
    """A TensorRT engine run through the tensor-address API (TensorRT 8.6, 10, 11) with cuda-python.

    Device buffers and pinned host buffers are sized for the engine profile's
    maximum batch; larger inputs are split into batches of that size.
    """

    def __init__(self, engine_path: Path, recorded: dict[str, Any]):
        trt = require("tensorrt", extra="tensorrt", purpose="Encoder with backend='tensorrt'")
        cudart = require("cuda.bindings.runtime", extra="tensorrt", purpose="Encoder with backend='tensorrt'")
        from dagh.runtime.device import gpu_info

        here = gpu_info()
        if recorded.get("tensorrt_version") != trt.__version__:
            raise EngineMismatchError(f"{engine_path.name} was built with TensorRT {recorded.get('tensorrt_version')}, "
                                      f"this is TensorRT {trt.__version__}: rebuild it with dagh-export on this device")
        if recorded.get("gpu_name") and here.get("gpu_name") and recorded["gpu_name"] != here["gpu_name"]:
            raise EngineMismatchError(f"{engine_path.name} was built for {recorded['gpu_name']}, this GPU is "
                                      f"{here['gpu_name']}: engines are specific to a GPU; rebuild it here")
        self.trt, self.cudart = trt, cudart
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise EngineMismatchError(f"TensorRT could not deserialize {engine_path.name}")
        self.context = self.engine.create_execution_context()
        _, _, max_shape = self.engine.get_tensor_profile_shape("images", 0)
        self.max_batch = int(max_shape[0])
        self.input_shape = tuple(int(v) for v in max_shape[1:])
        self.bits = int(self.engine.get_tensor_shape("codes")[-1])
        self.stream = self._check(cudart.cudaStreamCreate())
        sizes = {"images": self.max_batch * int(np.prod(self.input_shape)) * 4,
                 "codes": self.max_batch * self.bits * 4, "h": self.max_batch * self.bits * 4}
        self.device = {name: self._check(cudart.cudaMalloc(size)) for name, size in sizes.items()}
        self.host = {name: self._check(cudart.cudaMallocHost(size)) for name, size in sizes.items()}
        for name, pointer in self.device.items():
            self.context.set_tensor_address(name, int(pointer))

    def _check(self, result):
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise DaghError(f"CUDA error {err}")
        return values[0] if values else None

    def _host_array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        import ctypes

        count = int(np.prod(shape))
        buffer = (ctypes.c_float * count).from_address(int(self.host[name]))
        return np.frombuffer(buffer, dtype=np.float32, count=count).reshape(shape)

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes, hs = [], []
        kind = self.cudart.cudaMemcpyKind
        for start in range(0, len(images), self.max_batch):
            batch = images[start:start + self.max_batch]
            n = len(batch)
            self._host_array("images", (n, *self.input_shape))[:] = batch
            self._check(self.cudart.cudaMemcpyAsync(self.device["images"], self.host["images"], batch.nbytes,
                                                    kind.cudaMemcpyHostToDevice, self.stream))
            self.context.set_input_shape("images", (n, *self.input_shape))
            if not self.context.execute_async_v3(self.stream):
                raise DaghError("TensorRT execution failed")
            for name in ("codes", "h"):
                self._check(self.cudart.cudaMemcpyAsync(self.host[name], self.device[name], n * self.bits * 4,
                                                        kind.cudaMemcpyDeviceToHost, self.stream))
            self._check(self.cudart.cudaStreamSynchronize(self.stream))
            codes.append(self._host_array("codes", (n, self.bits)).copy())
            hs.append(self._host_array("h", (n, self.bits)).copy())
        return np.concatenate(codes), np.concatenate(hs)
