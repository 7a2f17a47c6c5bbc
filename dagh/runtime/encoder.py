"""Encoders: face crops -> packed binary codes, from an export directory.

    encoder = Encoder.open("runs/demo/export", precision="int8")   # backend="auto"
    codes = encoder.encode(frames_bgr, color_order="BGR")           # uint8 [n, ceil(bits/8)]

Backends: ``onnxruntime`` (execution providers in the order TensorRT EP, CUDA
EP, CPU, as available, or the ones you name) and ``tensorrt`` (the engine file,
through the TensorRT Python API and cuda-python; 8.6 to 11). ``auto`` takes
the TensorRT engine of the asked precision where the export has one and
TensorRT is installed, else onnxruntime. Opening checks the manifest (file
hashes, code length) and, for an engine, that it was built by this TensorRT
version for this GPU. Asking for a precision the export lacks is an error,
never a silent substitute.

Codes are packed as dagh.runtime.bits documents (bit i = column i, MSB first).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dagh._optional import available, require
from dagh.errors import ConfigError, DaghError
from dagh.manifest import Manifest, load_manifest
from dagh.runtime.bits import pack_codes
from dagh.runtime.preprocess import PreprocessConfig, preprocess_batch

PRECISIONS = ("fp32", "fp16", "int8")
BACKENDS = ("auto", "onnxruntime", "tensorrt")
DEFAULT_PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class EngineMismatchError(DaghError):
    """A TensorRT engine was built by another TensorRT version or for another GPU."""


class Encoder:
    """Encodes face crops into packed binary codes with one exported model."""

    def __init__(self, manifest: Manifest, directory: Path, precision: str, runner: Any, backend: str):
        self.manifest = manifest
        self.directory = directory
        self.precision = precision
        self.backend = backend
        self._runner = runner
        spec = manifest.input
        self.bits = manifest.code_bits
        self.preprocess = PreprocessConfig(size=spec.size, mean=tuple(spec.mean), std=tuple(spec.std),
                                           color_order=spec.color_order)

    @classmethod
    def open(cls, export_dir: str | os.PathLike, precision: str = "fp32", backend: str = "auto", *,
             providers: Sequence[str] | None = None, engine_cache_dir: str | os.PathLike | None = None,
             threads: int = 0, verify: bool = True) -> Encoder:
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
        directory = Path(export_dir)
        manifest = load_manifest(directory, verify=verify)
        engine = manifest.file("engine", precision)
        onnx_file = manifest.file("onnx", precision)
        if backend == "auto":
            backend = "tensorrt" if engine is not None and available("tensorrt") else "onnxruntime"
        if backend == "tensorrt":
            if engine is None:
                raise ConfigError(f"{str(directory)!r} has no {precision} TensorRT engine; build one with "
                                  f"dagh-export --engine yes on the device, or use backend='onnxruntime'")
            runner = TensorRTRunner(directory / engine.path, engine.details)
        else:
            if onnx_file is None:
                raise ConfigError(f"{str(directory)!r} has no {precision} ONNX model; re-export with "
                                  f"--{precision} (it has: {', '.join(sorted({f.precision for f in manifest.files if f.kind == 'onnx'}))})")
            runner = _onnxruntime_runner(directory / onnx_file.path, precision, providers, engine_cache_dir, threads)
        return cls(manifest, directory, precision, runner, backend)

    @property
    def providers(self) -> list[str]:
        """The onnxruntime execution providers in use (empty for the TensorRT backend)."""
        session = getattr(self._runner, "session", None)
        return list(session.get_providers()) if session is not None else []

    def encode(self, images: Any, *, color_order: str = "RGB", return_h: bool = False):
        """Face crops (uint8 HWC/NHWC arrays, Pillow images or paths) -> packed codes [n, ceil(bits/8)]."""
        return self.encode_preprocessed(preprocess_batch(images, self.preprocess, color_order=color_order),
                                        return_h=return_h)

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the model on a preprocessed float32 NCHW batch: (+1/-1 codes, h), unpacked."""
        return self._runner.run(np.ascontiguousarray(batch, dtype=np.float32))

    def encode_preprocessed(self, batch: np.ndarray, *, return_h: bool = False):
        """Float32 NCHW batch (already preprocessed) -> packed codes (and h if asked)."""
        codes, h = self.infer(batch)
        packed = pack_codes(codes > 0)
        return (packed, h) if return_h else packed


def _onnxruntime_runner(path: Path, precision: str, providers: Sequence[str] | None,
                        engine_cache_dir: str | os.PathLike | None, threads: int):
    ort = require("onnxruntime", extra="runtime", purpose="Encoder with backend='onnxruntime'")
    from dagh.runtime.onnx_runner import OnnxRunner

    present = set(ort.get_available_providers())
    if providers is None:
        chosen = [p for p in DEFAULT_PROVIDER_ORDER if p in present]
    else:
        missing = [p for p in providers if p not in present]
        if missing:
            raise ConfigError(f"onnxruntime here has no {', '.join(missing)} (available: {sorted(present)}); "
                              "install onnxruntime-gpu for CUDA/TensorRT, or drop them from providers")
        chosen = list(providers)
    configured: list[Any] = []
    for name in chosen:
        if name == "TensorrtExecutionProvider":
            options = {"trt_fp16_enable": precision == "fp16", "trt_int8_enable": precision == "int8",
                       "trt_engine_cache_enable": engine_cache_dir is not None}
            if engine_cache_dir is not None:
                options["trt_engine_cache_path"] = os.fspath(engine_cache_dir)
            configured.append((name, options))
        else:
            configured.append(name)
    return OnnxRunner(path, providers=configured, threads=threads)


class TensorRTRunner:
    """A TensorRT engine run through the tensor-address API (TensorRT 8.6, 10, 11) with cuda-python.

    Device buffers and pinned host buffers are sized for the engine profile's
    maximum batch; larger inputs are split into batches of that size.
    """

    def __init__(self, engine_path: Path, recorded: dict[str, Any]):
        trt = require("tensorrt", extra="tensorrt", purpose="Encoder with backend='tensorrt'")
        cudart = require("cuda.bindings.runtime", extra="tensorrt", purpose="Encoder with backend='tensorrt'")
        from dagh.export.tensorrt import gpu_info

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
