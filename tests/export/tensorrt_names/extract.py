"""Record the Python names a TensorRT binding wheel exposes, as JSON.

Run inside an environment where ``import tensorrt`` works::

    python extract.py --wheel <bindings wheel file name> [--note TEXT] > tensorrt-<version>.json

libnvinfer is only needed to *load* the bindings: the module's classes,
methods, properties, enum members/values and docstrings are all registered by
the pybind11 extension itself at import time.  The JSON files next to this
script were made on a machine without the (unreachable) libs wheels, like so::

    pip download --no-deps tensorrt-cu12-bindings==10.0.1 --python-version 3.11 \
        --only-binary=:all: -d wheels && unzip wheels/*.whl -d site
    # stub libnvinfer.so.N / libnvonnxparser.so.N / libnvinfer_plugin.so.N
    # (and libnvparsers.so.8 for 8.x) defining the few C entry points the .so
    # imports (createInferBuilder_INTERNAL, ..., each returning NULL; none is
    # called during import); `nm -D --undefined-only tensorrt.so` lists them.
    # A `tensorrt` package identical to the pip front end:
    #   tensorrt/__init__.py: from tensorrt_bindings import *
    #                         from tensorrt_bindings import __version__
    LD_LIBRARY_PATH=stubs PYTHONPATH=shim:site python extract.py --wheel ... > out.json

"module" holds the public (non-underscore) top-level names of ``tensorrt``;
"classes" the non-dunder dir() of each listed class; "enums" member -> int;
"signatures" the __doc__ of selected methods (for properties
"[property] get<fget sig>; set<fset sig> | read-only"; null when absent);
"missing" the listed names that do not exist.

``python extract.py --cuda-python`` instead prints one cuda-python entry
(import styles and cuda.bindings.runtime name presence) for cuda-python.json.
"""

import argparse
import json
import sys

CLASSES = [
    "Logger", "Builder", "IBuilderConfig", "INetworkDefinition", "OnnxParser",
    "Runtime", "ICudaEngine", "IExecutionContext", "IOptimizationProfile",
    "ITimingCache", "IEngineInspector", "EngineInspector", "ILayer",
    "IInt8EntropyCalibrator2",
]
ENUMS = [
    "Logger.Severity", "BuilderFlag", "NetworkDefinitionCreationFlag",
    "MemoryPoolType", "DeviceType", "DataType", "LayerInformationFormat",
    "ProfilingVerbosity", "TensorIOMode", "EngineCapability",
]
SIGNATURES = [
    "IBuilderConfig.set_timing_cache", "IBuilderConfig.create_timing_cache",
    "IBuilderConfig.get_timing_cache", "IBuilderConfig.can_run_on_DLA",
    "IBuilderConfig.set_device_type", "IBuilderConfig.get_device_type",
    "IBuilderConfig.DLA_core", "IBuilderConfig.default_device_type",
    "IBuilderConfig.set_flag", "IBuilderConfig.set_memory_pool_limit",
    "IBuilderConfig.add_optimization_profile", "IBuilderConfig.int8_calibrator",
    "Builder.num_DLA_cores", "Builder.max_DLA_batch_size",
    "Builder.create_network", "Builder.create_builder_config",
    "Builder.create_optimization_profile", "Builder.build_serialized_network",
    "IOptimizationProfile.set_shape", "OnnxParser.parse",
    "OnnxParser.parse_from_file", "Runtime.deserialize_cuda_engine",
    "IExecutionContext.set_input_shape", "IExecutionContext.set_tensor_address",
    "IExecutionContext.execute_async_v3",
    "ICudaEngine.create_engine_inspector", "ICudaEngine.create_execution_context",
    "ICudaEngine.get_tensor_profile_shape", "ICudaEngine.get_tensor_shape",
    "ICudaEngine.get_tensor_dtype", "ICudaEngine.get_tensor_name",
    "ICudaEngine.get_tensor_mode", "ICudaEngine.num_io_tensors",
    # the Python class is EngineInspector (there is no IEngineInspector)
    "EngineInspector.get_engine_information",
    "EngineInspector.get_layer_information",
]


def lookup(mod, dotted):
    obj = mod
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def attr_doc(mod, dotted):
    owner_name, _, attr = dotted.rpartition(".")
    owner = lookup(mod, owner_name)
    if owner is None or not hasattr(owner, attr):
        return None
    for klass in getattr(owner, "__mro__", [owner]):
        raw = vars(klass).get(attr)
        if raw is not None:
            break
    if isinstance(raw, property):
        get = (raw.fget.__doc__ or "").strip() if raw.fget else None
        put = "set" + (raw.fset.__doc__ or "").strip() if raw.fset else "read-only"
        return f"[property] get{get}; {put}"
    return (getattr(raw, "__doc__", None) or "").strip()


CUDA_NAMES = [
    "cudaMalloc", "cudaMallocHost", "cudaFree", "cudaFreeHost",
    "cudaStreamCreate", "cudaStreamDestroy", "cudaMemcpyAsync",
    "cudaStreamSynchronize", "cudaMemcpyKind", "cudaGetDeviceProperties",
    "cudaGetDeviceCount", "cudaRuntimeGetVersion", "cudaDriverGetVersion",
    "cudaError_t",
]


def cuda_python():
    import importlib
    import importlib.metadata as md
    import warnings

    out = {"versions": {}, "imports": {}}
    for dist in ("cuda-python", "cuda-bindings"):
        try:
            out["versions"][dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    mods = {}
    for label, modname in (("from cuda.bindings import runtime", "cuda.bindings.runtime"),
                           ("from cuda import cudart", "cuda.cudart")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                mods[modname] = importlib.import_module(modname)
                res = "ok"
            except Exception as exc:  # noqa: BLE001 - record whatever happens
                res = f"{type(exc).__name__}: {exc}"
        warned = sorted({f"{w.category.__name__}: {str(w.message)[:160]}"
                         for w in caught if "cuda" in str(w.message).lower()})
        out["imports"][label] = res + ("" if not warned else " (warns: {})".format("; ".join(warned)))
    for modname, mod in mods.items():
        out[modname] = {n: hasattr(mod, n) for n in CUDA_NAMES}
        kind = getattr(mod, "cudaMemcpyKind", None)
        if kind is not None:
            out[modname + ".cudaMemcpyKind"] = sorted(
                n for n in dir(kind) if n.startswith("cudaMemcpy"))
        if hasattr(mod, "cudaGetDeviceCount"):
            try:  # shows the no-GPU behaviour: a (cudaError_t, value) tuple
                out[modname + " cudaGetDeviceCount() here"] = repr(mod.cudaGetDeviceCount())
            except Exception as exc:  # noqa: BLE001
                out[modname + " cudaGetDeviceCount() here"] = f"{type(exc).__name__}: {exc}"
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", action="append", default=[])
    ap.add_argument("--method", default="import")
    ap.add_argument("--note")
    ap.add_argument("--module", default="tensorrt")
    ap.add_argument("--cuda-python", action="store_true")
    args = ap.parse_args()
    if args.cuda_python:
        return cuda_python()
    trt = __import__(args.module)

    out = {"version": trt.__version__, "method": args.method,
           "wheel": sorted(args.wheel)}
    if args.note:
        out["note"] = args.note
    out["module"] = sorted(n for n in dir(trt) if not n.startswith("_"))
    missing = []
    classes = {}
    for name in CLASSES:
        obj = lookup(trt, name)
        if obj is None:
            missing.append(name)
        else:
            classes[name] = sorted(n for n in dir(obj)
                                   if not (n.startswith("__") and n.endswith("__")))
    enums = {}
    for name in ENUMS:
        obj = lookup(trt, name)
        if obj is None:
            missing.append(name)
        else:
            enums[name] = {k: int(v) for k, v in sorted(obj.__members__.items())}
    out["classes"] = classes
    out["enums"] = enums
    out["signatures"] = {name: attr_doc(trt, name) for name in SIGNATURES}
    out["missing"] = sorted(missing)
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
