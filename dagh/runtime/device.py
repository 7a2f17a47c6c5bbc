"""What GPU this is: the facts an engine is built for and checked against (no CUDA import needed).

``gpu_info()`` is what engines record and are checked against; ``gpu_facts()``,
``cuda_facts()`` and ``jetson_facts()`` say the same and more, each with the
reason when something is absent (for dagh-doctor). ``engine_mismatch`` is
the rule an engine is refused by. External commands run with a timeout;
nothing here raises for a missing GPU, driver or library.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

COMMAND_TIMEOUT_S = 10.0


def run_command(argv: list[str], timeout_s: float = COMMAND_TIMEOUT_S) -> str:
    """stdout of ``argv``; raises OSError or subprocess.SubprocessError (a timeout too) on failure."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=True).stdout


@dataclasses.dataclass(frozen=True)
class GpuFacts:
    """GPU 0: name, compute capability ("8.7"), NVIDIA driver; ``absent`` says why there is none."""

    name: str | None = None
    compute_capability: str | None = None
    driver: str | None = None
    source: str | None = None   # "nvidia-smi" or "cuda-python"
    absent: str | None = None

    def info(self) -> dict[str, Any]:
        return {"gpu_name": self.name, "compute_capability": self.compute_capability, "driver": self.driver}


def gpu_facts() -> GpuFacts:
    """GPU 0 from nvidia-smi when present, else from cuda-python (Jetsons without nvidia-smi)."""
    why = []
    exe = shutil.which("nvidia-smi")
    if exe:
        try:
            out = run_command([exe, "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"])
            name, cap, driver = [s.strip() for s in out.splitlines()[0].split(",")]
            return GpuFacts(name, cap, driver, "nvidia-smi")
        except (subprocess.SubprocessError, ValueError, IndexError, OSError) as exc:
            why.append(f"nvidia-smi failed ({_short(exc)})")
    else:
        why.append("no nvidia-smi")
    try:  # Jetson has no nvidia-smi on older JetPacks; cuda-python is the next best witness
        from cuda.bindings import runtime as cudart  # type: ignore

        err, prop = cudart.cudaGetDeviceProperties(0)
        if int(err) == 0:
            return GpuFacts(prop.name.decode(errors="replace").rstrip("\x00"), f"{prop.major}.{prop.minor}",
                            None, "cuda-python")
        why.append(f"cuda-python finds no device (error {int(err)})")
    except ImportError:
        why.append("no cuda-python")
    except Exception as exc:
        why.append(f"cuda-python failed ({_short(exc)})")
    return GpuFacts(absent="; ".join(why))


def gpu_info() -> dict[str, Any]:
    """Name, compute capability and driver of GPU 0, from nvidia-smi when present (None each when absent)."""
    return gpu_facts().info()


@dataclasses.dataclass(frozen=True)
class CudaFacts:
    """CUDA versions ("12.6"): the runtime cuda-python offers, and the newest the driver supports."""

    runtime: str | None = None
    driver: str | None = None
    cuda_python: str | None = None
    absent: str | None = None


def _cuda_version(value: int) -> str:
    return f"{value // 1000}.{value % 1000 // 10}"


def cuda_facts() -> CudaFacts:
    """From cuda-python (what the TensorRT runner uses), else the driver's version from libcuda via ctypes."""
    try:
        from cuda.bindings import runtime as cudart  # type: ignore
    except ImportError:
        return _driver_only()
    except Exception as exc:
        return CudaFacts(absent=f"cuda-python failed to import ({_short(exc)})")
    try:
        err, runtime = cudart.cudaRuntimeGetVersion()
        derr, driver = cudart.cudaDriverGetVersion()
    except Exception as exc:
        return CudaFacts(cuda_python=_distribution_version("cuda-bindings", "cuda-python"),
                         absent=f"cuda-python failed ({_short(exc)})")
    has_driver = int(derr) == 0 and bool(driver)
    return CudaFacts(runtime=_cuda_version(runtime) if int(err) == 0 else None,
                     driver=_cuda_version(driver) if has_driver else None,
                     cuda_python=_distribution_version("cuda-bindings", "cuda-python"),
                     absent=None if has_driver else "no CUDA driver (cudaDriverGetVersion)")


def _driver_only() -> CudaFacts:
    import ctypes

    try:
        lib = ctypes.CDLL("libcuda.so.1")
        value = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(value)) != 0 or not value.value:
            return CudaFacts(absent="no cuda-python; libcuda gives no driver version")
    except (OSError, AttributeError):
        return CudaFacts(absent="no cuda-python, and no CUDA driver (libcuda.so.1 not found)")
    major = value.value // 1000
    hint = f" (for this driver: pip install 'dagh[tensorrt-cu{major}]')" if major in (12, 13) else ""
    return CudaFacts(driver=_cuda_version(value.value), absent=f"no cuda-python{hint}")


def _distribution_version(*names: str) -> str | None:
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "installed"


@dataclasses.dataclass(frozen=True)
class JetsonFacts:
    """A Jetson's model, L4T release ("R36.4.0") and nvpmodel power mode; ``absent``: not a Jetson."""

    model: str | None = None
    l4t: str | None = None
    power_mode: str | None = None
    jetpack_tensorrt: str | None = None   # where JetPack's TensorRT Python bindings are installed
    absent: str | None = None


def jetson_facts(root: Path = Path("/")) -> JetsonFacts:
    """Read /proc/device-tree/model, /etc/nv_tegra_release and ``nvpmodel -q`` (each where present)."""
    model_file, release_file = root / "proc/device-tree/model", root / "etc/nv_tegra_release"
    model = _read(model_file)
    release = _read(release_file)
    if release is None and (model is None or "jetson" not in model.lower()):
        return JetsonFacts(model=model, absent=f"not a Jetson (no {release_file})")
    l4t = None
    if release:  # "# R36 (release), REVISION: 4.0, GCID: ..."
        first = release.splitlines()[0].lstrip("# ")
        major, _, rest = first.partition(" ")
        revision = rest.split("REVISION:")[-1].split(",")[0].strip() if "REVISION:" in rest else ""
        l4t = f"{major}.{revision}" if revision else major
    power = None
    exe = shutil.which("nvpmodel")
    if exe:
        try:
            lines = [line.strip() for line in run_command([exe, "-q"]).splitlines() if line.strip()]
            power = lines[0].split(":", 1)[-1].strip() if lines else None
        except (OSError, subprocess.SubprocessError) as exc:
            power = f"unknown (nvpmodel -q failed: {_short(exc)})"
    found = sorted(str(p) for p in (root / "usr/lib").glob("python3*/dist-packages/tensorrt"))
    return JetsonFacts(model, l4t, power, found[0] if found else None)


def engine_mismatch(name: str, recorded: dict[str, Any], tensorrt_version: str,
                    gpu_name: str | None) -> str | None:
    """Why engine ``name`` (its manifest ``details``) cannot load here, or None: another TensorRT or GPU.

    The rule TensorRTRunner applies: the TensorRT version must match exactly; the GPU name
    must match where both are known.
    """
    if recorded.get("tensorrt_version") != tensorrt_version:
        return (f"{name} was built with TensorRT {recorded.get('tensorrt_version')}, this is TensorRT "
                f"{tensorrt_version}: rebuild it with dagh-engine on this device")
    if recorded.get("gpu_name") and gpu_name and recorded["gpu_name"] != gpu_name:
        return (f"{name} was built for {recorded['gpu_name']}, this GPU is {gpu_name}: engines are "
                "specific to a GPU; rebuild it here with dagh-engine")
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
