"""dagh-doctor's library: what this machine can run, and how an export would run on it.

    report = diagnose("runs/demo/export", precision="int8", backend="auto", search="cpu")
    report.check()        # PlanError naming every reason the export cannot run as asked

``probe_machine()``: CPU (model, cores, SIMD flags), GPU and compute capability,
driver and CUDA versions, TensorRT and DLA cores, onnxruntime and its
providers, numba and numba CUDA, Jetson model, L4T and power mode. Every probe
is bounded (commands and imports time out after ``timeout_s``) and never
raises: what it cannot find is ``absent``, with the reason.

``plan_export()`` applies the runtime's own rules, in the Recognizer's order:
the manifest's verification (size and sha256 of every file,
dagh.manifest.verify_file); Encoder.open's choice of backend (``auto``: the
precision's TensorRT engine where tensorrt imports, else onnxruntime with the
providers of DEFAULT_PROVIDER_ORDER that are present) and TensorRTRunner's
engine check (dagh.runtime.device.engine_mismatch); the detector made by
open_detector; the index backend made by HammingIndex. It builds the
detector and the index backend (cheap) but opens no encoder: an onnxruntime
TensorRT EP session or an engine can take minutes to build or load.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dagh._optional import require
from dagh.errors import ConfigError, DaghError
from dagh.manifest import FileEntry, Manifest, ManifestError, load_manifest, verify_file
from dagh.runtime.device import (
    CudaFacts,
    GpuFacts,
    JetsonFacts,
    cuda_facts,
    engine_mismatch,
    gpu_facts,
    jetson_facts,
)

PROBE_TIMEOUT_S = 60.0
SEARCH_CHOICES = ("cpu", "gpu", "numpy", "faiss", "auto")  # HammingIndex's BACKENDS, and auto
AUTO_SEARCH = ("gpu", "cpu", "numpy")                       # what --search auto tries, in order
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vpopcntdq",
              "avx512_vnni", "neon", "asimddp", "sve", "sve2")
T = TypeVar("T")


class PlanError(DaghError):
    """An export cannot run here as asked; the message lists every reason."""


class ProbeTimeout(DaghError):
    """A probe ran past its time limit."""


@dataclasses.dataclass(frozen=True)
class Cpu:
    model: str | None = None
    arch: str | None = None
    cores: int | None = None          # logical CPUs
    usable_cores: int | None = None   # those this process may run on (affinity, cgroup cpusets)
    simd: tuple[str, ...] = ()        # of SIMD_FLAGS; "neon" for aarch64's asimd
    absent: str | None = None


@dataclasses.dataclass(frozen=True)
class TensorRT:
    version: str | None = None
    location: str | None = None       # the package directory (JetPack's lives in system dist-packages)
    absent: str | None = None


@dataclasses.dataclass(frozen=True)
class Dla:
    cores: int | None = None
    absent: str | None = None


@dataclasses.dataclass(frozen=True)
class OnnxRuntime:
    version: str | None = None
    device: str | None = None                # onnxruntime.get_device(): "CPU" or "GPU"
    providers: tuple[str, ...] = ()          # available execution providers
    absent: str | None = None


@dataclasses.dataclass(frozen=True)
class Numba:
    version: str | None = None
    threads: int | None = None
    cuda_device: str | None = None           # the GPU numba.cuda would use (its name, compute capability)
    cuda_absent: str | None = None           # why numba has no usable CUDA GPU
    absent: str | None = None


@dataclasses.dataclass(frozen=True)
class Machine:
    cpu: Cpu
    gpu: GpuFacts
    cuda: CudaFacts
    tensorrt: TensorRT
    dla: Dla
    onnxruntime: OnnxRuntime
    numba: Numba
    jetson: JetsonFacts
    python: str
    prefix: str                               # sys.prefix: which environment this is
    platform: str
    numpy: str
    dagh: str


@dataclasses.dataclass(frozen=True)
class Step:
    """One stage of the plan: what it would use and, in ``problems``, why it cannot run (empty: it can)."""

    stage: str                 # "manifest", "encode", "detect", "search"
    backend: str | None = None
    precision: str | None = None
    detail: str = ""
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclasses.dataclass(frozen=True)
class Plan:
    export_dir: str
    precision: str
    backend: str
    search: str
    detector: str
    steps: tuple[Step, ...]
    others: tuple[Step, ...] = ()   # the export's other precisions, backend auto: for information only

    @property
    def problems(self) -> list[str]:
        return [f"{s.stage}: {p}" for s in self.steps for p in s.problems]


@dataclasses.dataclass(frozen=True)
class Report:
    machine: Machine
    plan: Plan | None = None

    @property
    def ok(self) -> bool:
        return self.plan is None or not self.plan.problems

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "dagh-doctor", "schema_version": 1, "ok": self.ok,
                "problems": self.plan.problems if self.plan else [], **dataclasses.asdict(self)}

    def check(self) -> None:
        """Raise PlanError listing every problem of the plan; nothing when it can run (or there is none)."""
        if not self.ok:
            raise PlanError(f"{self.plan.export_dir} cannot run here as asked: " + "; ".join(self.plan.problems))


def diagnose(export_dir: str | os.PathLike | None = None, *, precision: str = "fp32", backend: str = "auto",
             search: str = "cpu", detector: str = "retinaface", dla_core: int | None = None,
             timeout_s: float = PROBE_TIMEOUT_S) -> Report:
    """The machine report, and with ``export_dir`` the plan for it (see plan_export)."""
    machine = probe_machine(timeout_s)
    if export_dir is None:
        return Report(machine)
    plan = plan_export(export_dir, machine, precision=precision, backend=backend, search=search,
                       detector=detector, dla_core=dla_core, timeout_s=timeout_s)
    return Report(machine, plan)


# -- the machine ------------------------------------------------------------------------------------
def probe_machine(timeout_s: float = PROBE_TIMEOUT_S) -> Machine:
    """Every fact of the machine report; a probe that fails gives its field ``absent`` with the reason."""
    import numpy

    import dagh

    gpu = _safe(lambda: _bounded(gpu_facts, timeout_s), GpuFacts)
    jetson = _safe(lambda: _bounded(jetson_facts, timeout_s), JetsonFacts)
    trt = _safe(lambda: probe_tensorrt(jetson, timeout_s), TensorRT)
    cuda = _safe(lambda: _bounded(cuda_facts, timeout_s), CudaFacts)
    return Machine(cpu=_safe(probe_cpu, Cpu), gpu=gpu, cuda=cuda,
                   tensorrt=trt, dla=_safe(lambda: probe_dla(trt, gpu, timeout_s), Dla),
                   onnxruntime=_safe(lambda: probe_onnxruntime(timeout_s), OnnxRuntime),
                   numba=_safe(lambda: probe_numba(timeout_s), Numba), jetson=jetson,
                   python=platform.python_version(), prefix=sys.prefix, platform=platform.platform(),
                   numpy=numpy.__version__, dagh=dagh.__version__)


def probe_cpu() -> Cpu:
    """Model, logical and usable cores, SIMD flags (from /proc/cpuinfo; lscpu for the model on ARM)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError as exc:
        text, absent = "", f"no /proc/cpuinfo ({exc.strerror})"
    else:
        absent = None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    model = fields.get("model name") or fields.get("hardware") or _lscpu_model() or platform.processor()
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    if "asimd" in flags:
        flags.add("neon")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return Cpu(model or None, platform.machine() or None, os.cpu_count(), usable,
               tuple(f for f in SIMD_FLAGS if f in flags), absent)


def _lscpu_model() -> str | None:
    from dagh.runtime.device import run_command

    try:
        for line in run_command(["lscpu"], 5).splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip() or None
    except Exception:  # no lscpu, or it failed or timed out
        pass
    return None


def probe_tensorrt(jetson: JetsonFacts, timeout_s: float = PROBE_TIMEOUT_S) -> TensorRT:
    try:
        trt = _bounded(lambda: require("tensorrt", extra="tensorrt", purpose="the TensorRT backend"),
                       timeout_s)
    except Exception as exc:
        why = _why(exc)
        if jetson.jetpack_tensorrt:
            why += (f"; JetPack's TensorRT is in {jetson.jetpack_tensorrt}, which this Python does not see: "
                    "make the venv with --system-site-packages")
        return TensorRT(absent=why)
    where = getattr(trt, "__file__", None)
    return TensorRT(str(getattr(trt, "__version__", "unknown")), str(Path(where).parent) if where else None)


def probe_dla(trt: TensorRT, gpu: GpuFacts, timeout_s: float = PROBE_TIMEOUT_S) -> Dla:
    """DLA cores from TensorRT's Runtime (with a GPU), else the Jetson's nvdla device nodes."""
    why = "no tensorrt" if trt.absent else "no GPU" if gpu.absent else None
    if why is None:
        try:
            def count() -> int:
                tensorrt = sys.modules["tensorrt"]
                return int(tensorrt.Runtime(tensorrt.Logger(tensorrt.Logger.ERROR)).num_DLA_cores)
            return Dla(_bounded(count, timeout_s))
        except Exception as exc:
            why = f"TensorRT cannot say ({_why(exc)})"
    nodes = sorted(Path("/dev").glob("nvhost-ctrl-nvdla*"))
    if nodes:
        return Dla(len(nodes))
    return Dla(absent=f"{why}, and no /dev/nvhost-ctrl-nvdla* (only Jetson Xavier and Orin have DLA)")


def probe_onnxruntime(timeout_s: float = PROBE_TIMEOUT_S) -> OnnxRuntime:
    try:
        purpose = "the onnxruntime encoder and the RetinaFace detector"
        ort = _bounded(lambda: require("onnxruntime", extra="runtime", purpose=purpose), timeout_s)
        return OnnxRuntime(ort.__version__, ort.get_device(), tuple(ort.get_available_providers()))
    except Exception as exc:
        return OnnxRuntime(absent=_why(exc))


def probe_numba(timeout_s: float = PROBE_TIMEOUT_S) -> Numba:
    """numba (the CPU index) and numba.cuda (the GPU index): whether it finds a usable CUDA GPU."""
    try:
        def load() -> tuple[str, int]:
            numba = require("numba", extra="index", purpose="the CPU Hamming index")
            return numba.__version__, int(numba.get_num_threads())
        version, threads = _bounded(load, timeout_s)
    except Exception as exc:
        return Numba(absent=_why(exc))
    try:
        def cuda_device() -> str | None:
            cuda = require("numba.cuda", extra="gpu", purpose="the GPU Hamming index")
            if not cuda.is_available():
                return None
            if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
                return "the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
            device = cuda.get_current_device()
            name = device.name.decode() if isinstance(device.name, bytes) else str(device.name)
            return f"{name} (compute capability {'.'.join(map(str, device.compute_capability))})"
        device = _bounded(cuda_device, timeout_s)
        why = None if device else "no usable CUDA GPU (numba.cuda.is_available() is False)"
    except Exception as exc:
        device, why = None, _why(exc)
    return Numba(version, threads, device, why)


# -- the plan -----------------------------------------------------------------------------------------
def plan_export(export_dir: str | os.PathLike, machine: Machine, *, precision: str = "fp32",
                backend: str = "auto", search: str = "cpu", detector: str = "retinaface",
                dla_core: int | None = None, timeout_s: float = PROBE_TIMEOUT_S) -> Plan:
    """Which precision and backend encode, detect and search would use here, and what stops them."""
    from dagh.runtime.encode.encoder import BACKENDS, PRECISIONS
    from dagh.runtime.face.detectors import DETECTORS

    choices = (("precision", precision, PRECISIONS), ("backend", backend, BACKENDS),
               ("search", search, SEARCH_CHOICES), ("detector", detector, tuple(DETECTORS)))
    for name, value, allowed in choices:
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
    directory = Path(export_dir)
    asked = {"export_dir": str(directory), "precision": precision, "backend": backend, "search": search,
             "detector": detector}
    detect = detect_step(detector, timeout_s)
    try:
        manifest = load_manifest(directory, verify=False)
    except ManifestError as exc:
        return Plan(**asked, steps=(Step("manifest", problems=(str(exc),)), detect))
    steps = (manifest_step(directory, manifest),
             encode_step(directory, manifest, machine, precision, backend, dla_core), detect,
             search_step(search, manifest.code_bits, machine, timeout_s))
    others = tuple(encode_step(directory, manifest, machine, p, "auto") for p in PRECISIONS
                   if p != precision and (manifest.file("onnx", p) or manifest.file("engine", p)))
    return Plan(**asked, steps=steps, others=others)


def manifest_step(directory: Path, manifest: Manifest) -> Step:
    """Every file's size and sha256, as load_manifest(verify=True) checks them (all listed, not the first)."""
    problems = []
    for entry in manifest.files:
        try:
            verify_file(directory, entry)
        except ManifestError as exc:
            problems.append(str(exc))
    matching = len(manifest.files) - len(problems)
    detail = (f"{manifest.code_bits}-bit, {manifest.input.size} px; "
              f"{matching} of {len(manifest.files)} files match their sha256")
    return Step("manifest", detail=detail, problems=tuple(problems))


def encode_step(directory: Path, manifest: Manifest, machine: Machine, precision: str, backend: str,
                dla_core: int | None = None) -> Step:
    """Encoder.open's choice (encoder.choose_model), then what that backend needs from this machine."""
    from dagh.runtime.encode.encoder import choose_model
    from dagh.runtime.encode.onnxruntime_runner import DEFAULT_PROVIDER_ORDER

    try:
        backend, entry = choose_model(manifest, directory, precision, backend, dla_core=dla_core,
                                      tensorrt_available=machine.tensorrt.version is not None
                                      and machine.cuda.cuda_python is not None)
    except ConfigError as exc:
        return Step("encode", backend, precision, "", (str(exc),))
    if backend == "tensorrt":
        return _tensorrt_step(entry, machine, precision)
    ort = machine.onnxruntime
    problems = (ort.absent,) if ort.absent else ()
    providers = [p for p in DEFAULT_PROVIDER_ORDER if p in ort.providers]
    detail = f"{entry.path}; providers {', '.join(providers) or '-'}" if not ort.absent else ""
    return Step("encode", "onnxruntime", precision, detail, problems)


def _tensorrt_step(engine: FileEntry, machine: Machine, precision: str) -> Step:
    problems, trt, recorded = [], machine.tensorrt, engine.details
    if trt.absent:
        problems.append(trt.absent)
    else:
        mismatch = engine_mismatch(engine.path, recorded, trt.version, machine.gpu.name)
        if mismatch:
            problems.append(mismatch)
    if machine.cuda.cuda_python is None:
        problems.append("the TensorRT backend needs cuda-python (cuda.bindings.runtime): "
                        f"{machine.cuda.absent or 'not installed'}")
    if machine.gpu.name is None:
        problems.append(f"the TensorRT backend needs a CUDA GPU; none found ({machine.gpu.absent})")
    dla = recorded.get("dla_core")
    if dla is not None and (machine.dla.cores or 0) <= int(dla):
        problems.append(f"{engine.path} runs on DLA core {dla}; this device has "
                        f"{machine.dla.cores or 'no'} DLA cores")
    on_dla = f", DLA core {dla}" if dla is not None else ""
    detail = (f"{engine.path} (built with TensorRT {recorded.get('tensorrt_version')} for "
              f"{recorded.get('gpu_name') or 'an unrecorded GPU'}{on_dla})")
    return Step("encode", "tensorrt", precision, detail, tuple(problems))


def detect_step(detector: str, timeout_s: float = PROBE_TIMEOUT_S) -> Step:
    """The detector as the Recognizer makes it (open_detector: RetinaFace on onnxruntime's CPU provider)."""
    from dagh.runtime.face.detectors import open_detector

    try:
        found = _bounded(lambda: open_detector(detector), timeout_s)
    except Exception as exc:
        return Step("detect", "onnxruntime" if detector == "retinaface" else None, problems=(_why(exc),))
    session = getattr(found, "session", None)
    if session is None:
        return Step("detect", None, detail=f"{detector}: each image is one face, nothing to load")
    from dagh.runtime.face.retinaface import DISTRIBUTION

    weights = f"weights from {DISTRIBUTION} {_distribution_version(DISTRIBUTION)} (sha256 checked)"
    return Step("detect", "onnxruntime", None,
                f"{detector}, providers {', '.join(session.get_providers())}; {weights}")


def search_step(search: str, bits: int, machine: Machine, timeout_s: float = PROBE_TIMEOUT_S) -> Step:
    """The HammingIndex backend ``search`` names, made as Gallery.to_index makes it.

    ``auto``: the first of AUTO_SEARCH that can be made (the runtime has no auto: name it in your app).
    """
    from dagh.runtime.search.index import HammingIndex

    tried = []
    for name in AUTO_SEARCH if search == "auto" else (search,):
        try:
            _bounded(lambda name=name: HammingIndex(bits, backend=name), timeout_s)
        except Exception as exc:
            tried.append(f"{name}: {_why(exc)}" if search == "auto" else _why(exc))
            continue
        detail = {"cpu": f"numba {machine.numba.version}, {machine.numba.threads} threads",
                  "gpu": f"numba CUDA on {machine.numba.cuda_device}",
                  "numpy": "the numpy reference (slow: for tests and checks)",
                  "faiss": "faiss IndexBinaryFlat (the benchmarks' reference)"}[name]
        if tried:
            detail += "; not " + "; not ".join(tried)
        return Step("search", name, None, detail)
    return Step("search", search, problems=tuple(tried))


# -- helpers ------------------------------------------------------------------------------------------
def _bounded(fn: Callable[[], T], timeout_s: float = PROBE_TIMEOUT_S) -> T:
    """``fn()`` in a daemon thread: its value or its exception; ProbeTimeout past ``timeout_s``.

    A probe that times out is left running (daemon threads end with the interpreter).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="dagh-doctor-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise ProbeTimeout(f"timed out after {timeout_s:g} s")
    error = box.get("error")
    if isinstance(error, Exception):
        raise error
    if error is not None:  # SystemExit and the like, from an import: a failed probe, not the end
        raise DaghError(f"{type(error).__name__} raised: {error}")
    return box["value"]


def _safe(probe: Callable[[], T], kind: Callable[..., T]) -> T:
    """``probe()``, or ``kind(absent=reason)`` if it raises: a bug in a probe must not stop the report."""
    try:
        return probe()
    except Exception as exc:
        return kind(absent=f"probe failed: {_why(exc)}")


def _why(exc: BaseException) -> str:
    if isinstance(exc, DaghError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _distribution_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "(version unknown)"
