"""TensorRT engine building from an FP16 or Q/DQ INT8 ONNX model.

Written against the TensorRT Python API of 8.6, 10 and 11:
- 8.6: explicit-batch network; precision by builder flags (FP16, or INT8 for
  a Q/DQ model, which TensorRT then builds as explicit quantization).
- 10: strongly typed network (the ONNX types decide precision, no flags).
- 11: strongly typed always; the FP16/INT8 flags and calibrators are gone.
``tensorrt`` is imported only inside these functions, never at module import.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from dagh._optional import require
from dagh.errors import DaghError
from dagh.runtime.device import gpu_info


class EngineBuildError(DaghError):
    """TensorRT could not parse the model or build the engine."""


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    precision: str                 # "fp16" or "int8" (the ONNX file already carries it)
    input_shape: tuple[int, int, int]  # (3, H, W)
    max_batch: int = 64
    opt_batch: int = 8
    workspace_mb: int = 1024
    dla_core: int | None = None    # Jetson Orin DLA; GPU fallback for unsupported layers
    input_name: str = "images"


def tensorrt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, options: EngineOptions,
                 timing_cache: str | os.PathLike | None = None) -> dict[str, Any]:
    """Build and write a serialized engine; return what the manifest records about it."""
    trt = require("tensorrt", extra="tensorrt", purpose="building TensorRT engines")
    major = tensorrt_major(trt)
    logger = trt.Logger(trt.Logger.WARNING)
    try:
        builder = trt.Builder(logger)
    except Exception as exc:
        raise EngineBuildError(f"TensorRT cannot create a builder (is there a CUDA GPU?): {exc}") from exc
    if builder is None:
        raise EngineBuildError("TensorRT cannot create a builder: no usable CUDA GPU")
    flag_enum = trt.NetworkDefinitionCreationFlag
    if major >= 11:
        flags = 0  # strongly typed is the only mode
        strongly_typed = True
    elif major == 10:
        flags = 1 << int(flag_enum.STRONGLY_TYPED)
        strongly_typed = True
    else:
        flags = 1 << int(flag_enum.EXPLICIT_BATCH)
        strongly_typed = False
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    if not strongly_typed:  # TensorRT 8.6: precision by flags
        config.set_flag(trt.BuilderFlag.FP16 if options.precision == "fp16" else trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    c, h, w = options.input_shape
    opt = max(1, min(options.opt_batch, options.max_batch))
    profile.set_shape(options.input_name, (1, c, h, w), (opt, c, h, w), (options.max_batch, c, h, w))
    config.add_optimization_profile(profile)
    if options.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(options.dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    cache_note = _attach_timing_cache(config, timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT {trt.__version__} failed to build an engine from {onnx_path}; "
                               "run with the trtexec command printed by dagh-export --verbose to see why")
    from dagh.fileio import atomic_write

    with atomic_write(engine_path) as handle:
        handle.write(bytes(serialized))
    if timing_cache is not None:
        built = config.get_timing_cache()  # None where no cache ended up attached
        if built is not None:
            with atomic_write(timing_cache) as handle:
                handle.write(bytes(built.serialize()))
    return {"tensorrt_version": str(trt.__version__), "strongly_typed": strongly_typed,
            "profile": {"min": 1, "opt": opt, "max": options.max_batch}, "dla_core": options.dla_core,
            **({"timing_cache": cache_note} if cache_note else {}), **gpu_info()}


def _attach_timing_cache(config, timing_cache) -> str | None:
    """Attach the timing cache file (created where absent); a cache another device or TensorRT made
    does not attach: then a fresh one is used and the returned note says so."""
    if timing_cache is None:
        return None
    path = Path(timing_cache)
    blob = path.read_bytes() if path.is_file() else b""
    if config.set_timing_cache(config.create_timing_cache(blob), ignore_mismatch=False):
        return None
    if not blob or not config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False):
        raise EngineBuildError(f"TensorRT cannot attach a timing cache (file {path}); pass no timing cache")
    return f"{path.name} was made by another device or TensorRT version: a fresh cache replaced it"


def trtexec_command(onnx_name: str, engine_name: str, options: EngineOptions, tensorrt_major_version: int = 10,
                    timing_cache: str = "timing.cache") -> str:
    """The equivalent trtexec command, for users who build on the device by hand."""
    c, h, w = options.input_shape
    opt = max(1, min(options.opt_batch, options.max_batch))
    shape = lambda n: f"{options.input_name}:{n}x{c}x{h}x{w}"  # noqa: E731
    parts = ["trtexec", f"--onnx={onnx_name}", f"--saveEngine={engine_name}",
             f"--minShapes={shape(1)}", f"--optShapes={shape(opt)}", f"--maxShapes={shape(options.max_batch)}",
             f"--memPoolSize=workspace:{options.workspace_mb}M", f"--timingCacheFile={timing_cache}"]
    if tensorrt_major_version >= 10:
        parts.append("--stronglyTyped")
    else:
        parts.append("--fp16" if options.precision == "fp16" else "--int8")
    if options.dla_core is not None:
        parts += [f"--useDLACore={options.dla_core}", "--allowGPUFallback"]
    return " ".join(parts)
