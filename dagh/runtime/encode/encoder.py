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

from dagh._optional import available
from dagh.errors import ConfigError
from dagh.manifest import FileEntry, Manifest, load_manifest
from dagh.runtime.bits import pack_codes
from dagh.runtime.preprocess import PreprocessConfig, preprocess_batch

PRECISIONS = ("fp32", "fp16", "int8")
BACKENDS = ("auto", "onnxruntime", "tensorrt")


def preprocess_config(manifest: Manifest) -> PreprocessConfig:
    """The preprocessing an export's model takes, from its manifest's input spec."""
    spec = manifest.input
    template = getattr(spec, "face_template", None)  # manifests before schema 2 have none
    return PreprocessConfig(size=spec.size, mean=tuple(spec.mean), std=tuple(spec.std), color_order=spec.color_order,
                            face_template=tuple(map(tuple, template)) if template else None)


def choose_model(manifest: Manifest, directory: Path, precision: str, backend: str, *, dla_core: int | None = None,
                 tensorrt_available: bool | None = None) -> tuple[str, FileEntry]:
    """The backend and file Encoder.open runs: ``auto`` takes the precision's TensorRT engine where the export
    has one and tensorrt and cuda-python are installed, else its ONNX model. ConfigError where the export lacks what is asked."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    engine = manifest.file("engine", precision)
    if dla_core is not None:
        engine = next((f for f in manifest.files if f.kind == "dla-engine" and f.precision == precision
                       and f.details.get("dla_core") == dla_core), None)
        if engine is None or backend == "onnxruntime":
            raise ConfigError(f"{str(directory)!r} has no {precision} engine for DLA core {dla_core}; build one "
                              f"with dagh-engine --dla-core {dla_core} on the device (DLA runs TensorRT engines only)")
    if backend == "auto":
        # the TensorRT runner needs cuda-python too (JetPack's TensorRT comes without it)
        has_tensorrt = (available("tensorrt") and available("cuda.bindings.runtime") if tensorrt_available is None
                        else tensorrt_available)
        backend = "tensorrt" if engine is not None and has_tensorrt else "onnxruntime"
    if backend == "tensorrt":
        if engine is None:
            raise ConfigError(f"{str(directory)!r} has no {precision} TensorRT engine; build one with "
                              "dagh-engine on the device, or use backend='onnxruntime'")
        return backend, engine
    onnx_file = manifest.file("onnx", precision)
    if onnx_file is None:
        has = sorted({f.precision for f in manifest.files if f.kind == "onnx"})
        raise ConfigError(f"{str(directory)!r} has no {precision} ONNX model; re-export with --{precision} "
                          f"(it has: {', '.join(has)})")
    return backend, onnx_file


class Encoder:
    """Encodes face crops into packed binary codes with one exported model."""

    def __init__(self, manifest: Manifest, directory: Path, precision: str, runner: Any, backend: str):
        self.manifest = manifest
        self.directory = directory
        self.precision = precision
        self.backend = backend
        self._runner = runner
        self.bits = manifest.code_bits
        self.preprocess = preprocess_config(manifest)

    @classmethod
    def open(cls, export_dir: str | os.PathLike, precision: str = "fp32", backend: str = "auto", *,
             providers: Sequence[str] | None = None, engine_cache_dir: str | os.PathLike | None = None,
             threads: int = 0, verify: bool = True, dla_core: int | None = None) -> Encoder:
        """``dla_core``: run the export's DLA engine for that core (built by ``dagh-engine --dla-core``)."""
        directory = Path(export_dir)
        manifest = load_manifest(directory, verify=verify)
        backend, entry = choose_model(manifest, directory, precision, backend, dla_core=dla_core)
        if backend == "tensorrt":
            from dagh.runtime.encode.tensorrt_runner import TensorRTRunner

            runner = TensorRTRunner(directory / entry.path, entry.details)
        else:
            from dagh.runtime.encode.onnxruntime_runner import onnxruntime_runner

            runner = onnxruntime_runner(directory / entry.path, precision, providers, engine_cache_dir, threads)
        bits = getattr(runner, "bits", None)
        if bits is not None and bits != manifest.code_bits:
            close = getattr(runner, "close", None)
            if close is not None:
                close()
            raise ConfigError(f"{entry.path} in {str(directory)!r} gives {bits}-bit codes but its manifest says "
                              f"{manifest.code_bits}: the file belongs to another export; re-export")
        return cls(manifest, directory, precision, runner, backend)

    def close(self) -> None:
        """Release the runner (a TensorRT runner's device memory and stream; onnxruntime's session)."""
        close = getattr(self._runner, "close", None)
        if close is not None:
            close()
        self._runner = None

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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
        if len(batch) == 0:  # a frame without faces: nothing to run
            empty = np.zeros((0, self.bits), np.float32)
            return empty, empty.copy()
        return self._runner.run(np.ascontiguousarray(batch, dtype=np.float32))

    def encode_preprocessed(self, batch: np.ndarray, *, return_h: bool = False):
        """Float32 NCHW batch (already preprocessed) -> packed codes (and h if asked)."""
        codes, h = self.infer(batch)
        packed = pack_codes(codes > 0)
        return (packed, h) if return_h else packed
