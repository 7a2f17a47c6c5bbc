"""TensorRT engine building from an FP16 or Q/DQ INT8 ONNX model.

Written against the TensorRT Python API of 8.6, 10 and 11:
- 8.6: explicit-batch network; precision by builder flags (FP16, or INT8 for
  a Q/DQ model, which TensorRT then builds as explicit quantization).
- 10: strongly typed network (the ONNX types decide precision, no flags).
- 11: strongly typed always; the FP16/INT8 flags and calibrators are gone.
DLA engines (Jetson) have a static batch and record where each layer ran.
``tensorrt`` is imported only inside these functions, never at module import.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
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
    # Jetson DLA core. DLA takes one static batch (min = opt = max = dla_batch, default opt_batch);
    # layers DLA cannot run fail the build unless gpu_fallback, which records where each one ran.
    dla_core: int | None = None
    dla_batch: int | None = None
    gpu_fallback: bool = False
    input_name: str = "images"

    @property
    def profile(self) -> tuple[int, int, int]:
        """The (min, opt, max) batch of the optimization profile."""
        if self.dla_core is not None:
            batch = self.dla_batch or max(1, min(self.opt_batch, self.max_batch))
            return batch, batch, batch
        return 1, max(1, min(self.opt_batch, self.max_batch)), self.max_batch


def tensorrt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, options: EngineOptions,
                 timing_cache: str | os.PathLike | None = None,
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build and write a serialized engine; return what the manifest records about it.

    TensorRT's warnings and errors go to ``log`` (default: stderr)."""
    trt = require("tensorrt", extra="tensorrt", purpose="building TensorRT engines")
    major = tensorrt_major(trt)
    logger = _build_logger(trt, log or (lambda m: print(m, file=sys.stderr)))
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
    elif major == 10 and options.dla_core is None:
        flags = 1 << int(flag_enum.STRONGLY_TYPED)
        strongly_typed = True
    elif major == 10:  # DLA on 10.x: built the way NVIDIA documents it, weakly typed with the FP16 flag
        flags = 0
        strongly_typed = False
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
    if not strongly_typed:  # precision by flags; INT8 (the Q/DQ layers) with FP16 for the layers between
        config.set_flag(trt.BuilderFlag.FP16)
        if options.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    c, h, w = options.input_shape
    low, opt, high = options.profile
    profile.set_shape(options.input_name, (low, c, h, w), (opt, c, h, w), (high, c, h, w))
    config.add_optimization_profile(profile)
    dla_capable = _configure_dla(trt, builder, network, config, options) if options.dla_core is not None else None
    cache_note = _attach_timing_cache(config, timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT {trt.__version__} failed to build an engine from {onnx_path} "
                               "(its messages are above); the trtexec command dagh-engine prints shows more "
                               "with --verbose")
    placement = _dla_placement(logger.messages, dla_capable, options) if dla_capable is not None else None
    from dagh.fileio import atomic_write

    with atomic_write(engine_path) as handle:
        handle.write(bytes(serialized))
    if timing_cache is not None:
        built = config.get_timing_cache()  # None where no cache ended up attached
        if built is not None:
            with atomic_write(timing_cache) as handle:
                handle.write(bytes(built.serialize()))
    return {"tensorrt_version": str(trt.__version__), "strongly_typed": strongly_typed,
            "profile": {"min": low, "opt": opt, "max": high}, "dla_core": options.dla_core,
            **({"dla": placement} if placement is not None else {}),
            **({"timing_cache": cache_note} if cache_note else {}), **gpu_info()}


def _build_logger(trt: Any, forward: Callable[[str], None]) -> Any:
    """A TensorRT logger that keeps every message (DLA placement is reported at INFO) and forwards
    warnings and errors."""
    loud = int(trt.Logger.Severity.WARNING)  # ILogger.Severity, also reachable as Logger.Severity
    kept = int(trt.Logger.Severity.INFO)

    class KeepingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[str] = []

        def log(self, level, message) -> None:
            if int(level) <= kept:  # INFO and above (DLA placement is INFO); VERBOSE is dropped
                self.messages.append(str(message))
            if int(level) <= loud:
                forward(f"TensorRT: {message}")

    return KeepingLogger()


def _configure_dla(trt: Any, builder: Any, network: Any, config: Any, options: EngineOptions) -> dict[str, list]:
    """Point the build at a DLA core, or refuse: no DLA in this TensorRT or on this device, or layers DLA
    cannot run without ``gpu_fallback``. Returns the layers DLA can and cannot take."""
    core = int(options.dla_core)
    device_type = trt.DeviceType  # every binding from 8.6 to 11.4 has DeviceType.DLA; the cores may be absent
    cores = int(builder.num_DLA_cores)
    if not 0 <= core < cores:
        where = f"has {cores} DLA core{'s' if cores != 1 else ''}" if cores else "reports no DLA core"
        raise EngineBuildError(f"--dla-core {core}: TensorRT {trt.__version__} on this device {where} (DLA exists on "
                               "Jetson AGX / NX Orin and Xavier, not on x86 GPUs, and TensorRT 10.8 to 11.4.0 "
                               "have no DLA support)")
    config.default_device_type = device_type.DLA
    config.DLA_core = core
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    capable = {"dla": [], "gpu": []}
    for layer in layers:
        capable["dla" if config.can_run_on_DLA(layer) else "gpu"].append(str(layer.name))
    if not capable["dla"]:
        raise EngineBuildError(f"no layer of this model can run on DLA core {core}; build without --dla-core")
    if capable["gpu"]:
        if not options.gpu_fallback:
            names = ", ".join(capable["gpu"][:5]) + (" ..." if len(capable["gpu"]) > 5 else "")
            raise EngineBuildError(f"{len(capable['gpu'])} of {len(layers)} layers cannot run on DLA ({names}); "
                                   "pass --dla-fallback to run them on the GPU (recorded in the manifest), or "
                                   "build without --dla-core")
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    return capable


def _dla_placement(messages: list[str], capable: dict[str, list], options: EngineOptions) -> dict[str, Any]:
    """Where the layers ran: TensorRT's own report in its build log (INFO lines "[DlaLayer] ..." and
    "[GpuLayer] ...", a DLA entry being a fused subgraph), ``confirmed``; else the builder's
    can_run_on_DLA answers before the build, not confirmed (TensorRT may still move layers, e.g. past
    its subgraph limit). An engine with nothing on DLA is refused, never recorded as DLA."""
    dla = [m.split("[DlaLayer]", 1)[1].strip() for m in messages if "[DlaLayer]" in m]
    gpu = [m.split("[GpuLayer]", 1)[1].strip() for m in messages if "[GpuLayer]" in m]
    confirmed = bool(dla or gpu)
    if not confirmed:
        dla, gpu = capable["dla"], capable["gpu"]
    if not dla:
        raise EngineBuildError(f"TensorRT placed no layer on DLA core {options.dla_core} ({len(gpu)} ran on "
                               "the GPU); build without --dla-core")
    source = ("TensorRT build log (Layers Running on DLA / GPU)" if confirmed
              else "IBuilderConfig.can_run_on_DLA before the build (TensorRT's log named no placement)")
    return {"core": options.dla_core, "batch": options.profile[0], "gpu_fallback": options.gpu_fallback,
            "dla_layers": dla, "gpu_layers": gpu, "confirmed": confirmed, "source": source}


def _attach_timing_cache(config, timing_cache) -> str | None:
    """Attach the timing cache file (created where absent); a cache another device or TensorRT made
    does not attach: then a fresh one is used and the returned note says so."""
    if timing_cache is None:
        return None
    path = Path(timing_cache)
    blob = path.read_bytes() if path.is_file() else b""

    def attach(data: bytes) -> bool:
        cache = config.create_timing_cache(data)  # None for a blob TensorRT cannot read
        return cache is not None and bool(config.set_timing_cache(cache, ignore_mismatch=False))

    if attach(blob):
        return None
    if not blob or not attach(b""):
        raise EngineBuildError(f"TensorRT cannot attach a timing cache (file {path}); pass no timing cache")
    return f"{path.name} was made by another device or TensorRT version: a fresh cache replaced it"


def trtexec_command(onnx_name: str, engine_name: str, options: EngineOptions, tensorrt_major_version: int = 10,
                    timing_cache: str = "timing.cache") -> str:
    """The equivalent trtexec command, for users who build on the device by hand."""
    c, h, w = options.input_shape
    low, opt, high = options.profile
    shape = lambda n: f"{options.input_name}:{n}x{c}x{h}x{w}"  # noqa: E731
    parts = ["trtexec", f"--onnx={onnx_name}", f"--saveEngine={engine_name}",
             f"--minShapes={shape(low)}", f"--optShapes={shape(opt)}", f"--maxShapes={shape(high)}",
             f"--memPoolSize=workspace:{options.workspace_mb}M", f"--timingCacheFile={timing_cache}"]
    if tensorrt_major_version == 10 and options.dla_core is None:
        parts.append("--stronglyTyped")
    elif tensorrt_major_version < 11:
        parts += ["--fp16"] + (["--int8"] if options.precision == "int8" else [])
    # 11: strongly typed always; it has no precision flags and needs no --stronglyTyped
    if options.dla_core is not None:
        parts.append(f"--useDLACore={options.dla_core}")
        if options.gpu_fallback:
            parts.append("--allowGPUFallback")
    return " ".join(parts)
