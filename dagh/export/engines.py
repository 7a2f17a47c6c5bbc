"""TensorRT engines for an export directory: build them, check them on the device, record them.

    built = build_engines(export_dir, EngineSettings(precisions=("int8",)))

``dagh-engine`` (on the device, torch-free) and ``dagh-export --engine`` share
this code. Each engine is built from the FP16 or Q/DQ INT8 ONNX already in the
directory, then run on the check crops that dagh-export stored
(``check_crops.npy``); its codes are compared with the FP32 ONNX codes of the
same crops (``check_codes.npy``). An engine that flips more bits than its ONNX
did, plus ``max_extra_flips``, is refused: it is deleted and the manifest is
left as it was. The manifest is rewritten only after every engine passed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dagh.errors import ConfigError, DaghError
from dagh.export.tensorrt import EngineOptions, build_engine, tensorrt_major, trtexec_command
from dagh.manifest import MANIFEST_NAME, FileEntry, Manifest, file_entry, load_manifest

CHECK_CROPS = "check_crops.npy"   # uint8 [N, H, W, 3] RGB face crops at the model's size
CHECK_CODES = "check_codes.npy"   # int8 [N, bits] +1/-1: the FP32 ONNX codes of those crops
CHECK_COUNT = 256
DEFAULT_MAX_EXTRA_FLIPS = 0.005   # of all bits: what an engine may flip beyond its own ONNX
ENGINE_PRECISIONS = ("fp16", "int8")


class EngineCheckError(DaghError):
    """An engine's codes on the check crops differ from the FP32 ONNX codes more than allowed."""


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """What dagh-engine builds (its options)."""

    precisions: tuple[str, ...] = ()   # empty: every FP16 / INT8 ONNX the export has
    max_batch: int = 64
    opt_batch: int = 8
    workspace_mb: int = 1024
    dla_core: int | None = None        # also build the FP16 engine for this DLA core
    dla_batch: int | None = None       # the DLA engines' static batch (default opt_batch)
    gpu_fallback: bool = False         # DLA: layers DLA cannot run go to the GPU (recorded)
    timing_cache: str | None = None    # default: timing.cache inside the export directory
    max_extra_flips: float = DEFAULT_MAX_EXTRA_FLIPS
    check: bool = True                 # run each engine on the check crops

    def __post_init__(self) -> None:
        unknown = set(self.precisions) - set(ENGINE_PRECISIONS)
        if unknown:
            raise ConfigError(f"engines are built for {ENGINE_PRECISIONS}, not {sorted(unknown)}")
        if not 1 <= self.max_batch <= 4096:
            raise ConfigError(f"--max-batch must be in 1..4096, got {self.max_batch}")
        if not 0.0 <= self.max_extra_flips < 1.0:
            raise ConfigError(f"--max-extra-flips must be in [0, 1), got {self.max_extra_flips}")
        if self.dla_batch is not None and self.dla_batch < 1:
            raise ConfigError(f"--dla-batch must be at least 1, got {self.dla_batch}")


@dataclasses.dataclass(frozen=True)
class EnginePlan:
    onnx: str                          # the ONNX file it is built from
    engine: str                        # the engine file it becomes
    options: EngineOptions

    @property
    def kind(self) -> str:
        return "dla-engine" if self.options.dla_core is not None else "engine"


@dataclasses.dataclass
class EngineCheck:
    """An engine's codes on the check crops against the FP32 ONNX codes."""

    crops: int
    bits: int
    flipped_bits: int
    flip_rate: float
    onnx_flip_rate: float | None       # the same-precision ONNX on the same crops (dagh-export measured it)
    allowed_flip_rate: float

    @property
    def passed(self) -> bool:
        return self.flip_rate <= self.allowed_flip_rate

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed}


@dataclasses.dataclass
class BuiltEngine:
    plan: EnginePlan
    entry: FileEntry
    check: EngineCheck | None


def engine_plans(manifest: Manifest, settings: EngineSettings) -> list[EnginePlan]:
    """One plan per FP16 / INT8 ONNX file asked for (and its DLA variant when a DLA core is given)."""
    have = {f.precision: f.path for f in manifest.files if f.kind == "onnx" and f.precision in ENGINE_PRECISIONS}
    wanted = settings.precisions or tuple(p for p in ENGINE_PRECISIONS if p in have)
    if settings.dla_core is not None and "fp16" not in wanted:
        raise ConfigError("--dla-core builds the FP16 engine for DLA: DLA runs INT8 only by TensorRT's implicit "
                          "calibration, not a Q/DQ model like model.int8.onnx; add --fp16 (the export needs one)")
    missing = [p for p in wanted if p not in have]
    if missing:
        raise ConfigError(f"the export has no {' or '.join(missing)} ONNX model to build from; re-export with "
                          + " ".join(f"--{p}" for p in missing))
    size = manifest.input.size
    plans = []
    for precision in wanted:
        onnx = have[precision]
        base = EngineOptions(precision=precision, input_shape=(3, size, size), max_batch=settings.max_batch,
                             opt_batch=settings.opt_batch, workspace_mb=settings.workspace_mb,
                             input_name=manifest.input.name)
        plans.append(EnginePlan(onnx, onnx.replace(".onnx", ".engine"), base))
        if settings.dla_core is not None and precision == "fp16":  # DLA takes INT8 only by implicit calibration
            dla = dataclasses.replace(base, dla_core=settings.dla_core, dla_batch=settings.dla_batch,
                                      gpu_fallback=settings.gpu_fallback)
            plans.append(EnginePlan(onnx, onnx.replace(".onnx", f".dla{settings.dla_core}.engine"), dla))
    return plans


def trtexec_commands(plans: Sequence[EnginePlan], tensorrt_major_version: int) -> list[str]:
    return [trtexec_command(p.onnx, p.engine, p.options, tensorrt_major_version) for p in plans]


def installed_tensorrt_major(default: int = 10) -> int:
    """The major version of the tensorrt module here, or ``default`` where there is none."""
    import importlib

    from dagh._optional import available

    return tensorrt_major(importlib.import_module("tensorrt")) if available("tensorrt") else default


def timing_cache_path(directory: Path, settings: EngineSettings) -> Path:
    return Path(settings.timing_cache) if settings.timing_cache else directory / "timing.cache"


@dataclasses.dataclass
class StagedEngines:
    """Engines (and the timing cache) built and checked under temporary names; nothing replaced yet."""

    built: list[BuiltEngine]
    renames: list[tuple[Path, Path]]   # (temporary, final), the engines first

    def discard(self) -> None:
        for temporary, _ in self.renames:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()


def build_plans(directory: Path, manifest: Manifest, plans: Sequence[EnginePlan], settings: EngineSettings,
                log: Callable[[str], None]) -> StagedEngines:
    """Build every plan into a temporary file and check it; the timing cache is updated in a temporary copy.

    Where any build or check fails, every temporary file is removed and the error raised: the export's
    files, the timing cache included, are as they were. ``commit_engines`` puts the staged files in place.
    """
    cache = timing_cache_path(directory, settings)
    staged_cache = cache.parent / f".{cache.name}.building"
    check_set = load_check_set(directory, manifest) if settings.check else None
    staged = StagedEngines([], [])
    try:
        if cache.is_file():
            shutil.copyfile(cache, staged_cache)
        staged.renames.append((staged_cache, cache))
        for plan in plans:
            temporary = directory / f".{plan.engine}.building"
            staged.renames.insert(len(staged.built), (temporary, directory / plan.engine))
            log(f"building {plan.engine} from {plan.onnx} (profile batch {'/'.join(map(str, plan.options.profile))})")
            details = build_engine(directory / plan.onnx, temporary, plan.options, timing_cache=staged_cache, log=log)
            check = None
            if check_set is not None:
                check = check_engine(temporary, details, plan, check_set, settings.max_extra_flips)
                details["check"] = check.to_dict()
                log(f"  {plan.engine}: {check.flipped_bits} of {check.crops * check.bits} bits differ from the "
                    f"FP32 ONNX on {check.crops} check crops ({check.flip_rate * 100:.3f}%; its ONNX "
                    f"{_percent(check.onnx_flip_rate)}; allowed {check.allowed_flip_rate * 100:.3f}%)")
                if not check.passed:
                    raise EngineCheckError(
                        f"{plan.engine} flips {check.flip_rate * 100:.3f}% of the bits on the check crops, more than "
                        f"the {check.allowed_flip_rate * 100:.3f}% allowed ({plan.onnx} flips "
                        f"{_percent(check.onnx_flip_rate)}); the engine was not kept. Rebuild on an idle device, "
                        "or raise --max-extra-flips if the loss is acceptable")
            entry = file_entry(directory, temporary.name, plan.kind, plan.options.precision, source_onnx=plan.onnx,
                               **details)
            entry.path = plan.engine
            staged.built.append(BuiltEngine(plan, entry, check))
    except BaseException:
        staged.discard()
        raise
    if not staged_cache.is_file():  # no build wrote a cache: nothing to put in place
        staged.renames.remove((staged_cache, cache))
    return staged


def commit_engines(directory: Path, manifest: Manifest, staged: StagedEngines, tensorrt_version: str,
                   log: Callable[[str], None], *, write_manifest: bool = True) -> None:
    """Record the staged engines in ``manifest`` (with the timing cache and, for TensorRT 8.6 / 10,
    calibration.cache), then rename every staged file into place and write the manifest last.

    Everything that can fail (hashing, the calibration cache, serializing the manifest) happens before
    the first rename; on failure the staged files are removed and the export is as it was."""
    from dagh.fileio import atomic_write_text

    try:
        extra = []
        for temporary, final in staged.renames[len(staged.built):]:  # the timing cache
            if final.parent.resolve() == directory.resolve():
                entry = file_entry(directory, temporary.name, "timing-cache", None)
                entry.path = final.name
                extra.append(entry)
        calibration = implicit_calibration_cache(directory, manifest, tensorrt_version, log)
        if calibration is not None:
            temporary, entry = calibration
            staged.renames.append((temporary, directory / entry.path))
            extra.append(entry)
        record_engines(manifest, staged.built, extra)
        text = manifest.to_json()
    except BaseException:
        staged.discard()
        raise
    for temporary, final in staged.renames:
        os.replace(temporary, final)
    if write_manifest:
        atomic_write_text(directory / MANIFEST_NAME, text)


def _percent(rate: float | None) -> str:
    return "not measured" if rate is None else f"{rate * 100:.3f}%"


@dataclasses.dataclass
class CheckSet:
    images: np.ndarray                 # preprocessed float32 NCHW
    reference: np.ndarray              # int8 +1/-1 FP32 ONNX codes
    onnx_flip_rates: dict[str, float]  # precision -> flip rate of that ONNX against the FP32 ONNX


def load_check_set(directory: Path, manifest: Manifest) -> CheckSet:
    """The check crops and their FP32 ONNX codes from the export (validated: data, never code)."""
    from dagh.runtime.encode.encoder import preprocess_config
    from dagh.runtime.preprocess import preprocess_batch

    if manifest.file("check-crops") is None or manifest.file("check-codes") is None:
        raise ConfigError(f"{str(directory)!r} has no {CHECK_CROPS}: it was exported by an older dagh. Re-export "
                          "it, or pass --no-check to build without checking the engines' codes")
    try:
        crops = np.load(directory / CHECK_CROPS, allow_pickle=False)
        reference = np.load(directory / CHECK_CODES, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the check crops of {str(directory)!r}: {exc}") from exc
    size = manifest.input.size
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
        raise ConfigError(f"{CHECK_CROPS} must be uint8 [N, {size}, {size}, 3], got {crops.dtype} {crops.shape}")
    if reference.shape != (len(crops), manifest.code_bits) or not np.isin(reference, (-1, 1)).all():
        raise ConfigError(f"{CHECK_CODES} must hold +1/-1 codes [{len(crops)}, {manifest.code_bits}]")
    rates = manifest.reports.get("engine_check", {}).get("onnx_flip_rate", {})
    return CheckSet(preprocess_batch(crops, preprocess_config(manifest)), reference, dict(rates))


def check_engine(engine_path: Path, details: dict[str, Any], plan: EnginePlan, check_set: CheckSet,
                 max_extra_flips: float) -> EngineCheck:
    """Run the engine on the check crops and count the bits that differ from the FP32 ONNX."""
    from dagh.runtime.encode.tensorrt_runner import TensorRTRunner

    with TensorRTRunner(engine_path, details) as runner:
        codes, _ = runner.run(check_set.images)
    flips = int((np.where(codes > 0, 1, -1) != check_set.reference).sum())
    onnx_rate = check_set.onnx_flip_rates.get(plan.options.precision)
    rate = flips / check_set.reference.size
    return EngineCheck(crops=len(check_set.reference), bits=int(check_set.reference.shape[1]), flipped_bits=flips,
                       flip_rate=rate, onnx_flip_rate=onnx_rate,
                       allowed_flip_rate=(onnx_rate or 0.0) + max_extra_flips)


def record_engines(manifest: Manifest, built: Sequence[BuiltEngine], extra_files: Sequence[FileEntry] = ()) -> None:
    """Put the engines (and side files) into ``manifest``, replacing entries of the same file."""
    new = [b.entry for b in built] + list(extra_files)
    paths = {entry.path for entry in new}
    manifest.files = [f for f in manifest.files if f.path not in paths] + new
    checks = {b.entry.path: b.check.to_dict() for b in built if b.check is not None}
    if checks:
        manifest.reports.setdefault("engine_check", {}).setdefault("engines", {}).update(checks)


def build_engines(export_dir: str | os.PathLike, settings: EngineSettings,
                  log: Callable[[str], None] = print) -> tuple[Manifest, list[BuiltEngine]]:
    """dagh-engine: build, check and record the engines of an export directory (see the module docstring).

    The manifest is verified first (sha256 of every file); the directory is replaced whole at the end."""
    from dagh._optional import require

    directory = Path(export_dir)
    manifest = load_manifest(directory, verify=True)
    plans = engine_plans(manifest, settings)
    trt = require("tensorrt", extra="tensorrt", purpose="dagh-engine")
    require("cuda.bindings.runtime", extra="tensorrt", purpose="dagh-engine (running the engines it checks)")
    log(f"TensorRT {trt.__version__}; building {len(plans)} engine{'s' if len(plans) != 1 else ''} in {directory}")
    from dagh.fileio import updated_directory

    cache = timing_cache_path(directory, settings)
    # The export is changed as a whole: a linked copy gets the engines and the manifest, then replaces it in one
    # step, so a crash (even kill -9) at any point leaves the old export or the new one, never a mix.
    with updated_directory(directory) as work:
        if cache.parent.resolve() == directory.resolve():
            settings = dataclasses.replace(settings, timing_cache=str(work / cache.name))
        staged = build_plans(work, manifest, plans, settings, log)
        commit_engines(work, manifest, staged, str(trt.__version__), log)
    return manifest, staged.built


def implicit_calibration_cache(directory: Path, manifest: Manifest, version: str,
                               log: Callable[[str], None]) -> tuple[Path, FileEntry] | None:
    """``calibration.cache`` for this TensorRT's implicit INT8 calibration (8.6 and 10; 11 has none), written
    under a temporary name from the export's calibration ranges: (temporary path, its manifest entry).
    None where the export has no INT8 calibration or this TensorRT cannot use it."""
    from dagh.export.calibration_cache import CACHE_NAME, write_calibration_cache

    ranges = next((f for f in manifest.files if f.kind == "calibration" and f.path.endswith(".ranges.json")), None)
    if ranges is None:
        return None
    if int(version.split(".")[0]) >= 11:
        log(f"no {CACHE_NAME}: TensorRT {version} has no implicit INT8 calibration (the Q/DQ engine needs none)")
        return None
    method = manifest.reports.get("calibration", {}).get("method", "minmax")
    temporary = directory / f".{CACHE_NAME}.building"
    write_calibration_cache(directory / ranges.path, temporary, version, method)
    entry = file_entry(directory, temporary.name, "calibration", "int8",
                       format=f"TensorRT {version} IInt8Calibrator cache (implicit quantization of model.onnx)")
    entry.path = CACHE_NAME
    return temporary, entry
