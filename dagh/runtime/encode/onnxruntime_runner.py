"""Run an exported ONNX model with onnxruntime (imported lazily)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dagh._optional import require
from dagh.errors import ConfigError, DaghError

CPU_PROVIDERS = ("CPUExecutionProvider",)
DEFAULT_PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRunner:
    """An onnxruntime session over a dagh ONNX model: ``run(images) -> (codes, h)``.

    ``images`` is the float32 NCHW batch from :func:`dagh.runtime.preprocess_batch`;
    larger inputs are split into batches of ``batch_size``.
    """

    def __init__(self, path: str | os.PathLike, providers: Sequence[str | tuple] = CPU_PROVIDERS,
                 threads: int = 0, batch_size: int = 256):
        ort = require("onnxruntime", extra="export", purpose="running ONNX models")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # onnxruntime's worker threads spin for a while after each run; in a camera
        # app the Hamming search runs right after the encoder on the same cores, and
        # the spinning threads starved it (end-to-end p90 8.0 ms against 2.1 ms of work).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(os.fspath(path), sess_options=options,
                                                providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise DaghError(f"onnxruntime cannot load {os.fspath(path)!r}: {exc}") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.batch_size = batch_size
        shape = next((o.shape for o in self.session.get_outputs() if o.name == "codes"), None)
        if shape is None or len(shape) != 2:
            raise DaghError(f"{os.fspath(path)!r} is not a dagh model: it has no 'codes' output [N, bits]")
        self.bits = shape[1] if isinstance(shape[1], int) else None  # None: a symbolic dimension

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes, hs = [], []
        for start in range(0, len(images), self.batch_size):
            c, h = self.session.run(["codes", "h"], {self.input_name: images[start:start + self.batch_size]})
            codes.append(c)
            hs.append(h)
        return np.concatenate(codes), np.concatenate(hs)


def onnxruntime_runner(path: Path, precision: str, providers: Sequence[str] | None,
                        engine_cache_dir: str | os.PathLike | None, threads: int):
    """An OnnxRunner for the Encoder: the providers named (each must be present) or those present, in
    DEFAULT_PROVIDER_ORDER; the TensorRT EP set for ``precision`` and the engine cache."""
    ort = require("onnxruntime", extra="runtime", purpose="Encoder with backend='onnxruntime'")
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
