"""Face crops -> packed codes: the Encoder and its runners (onnxruntime, TensorRT engine).

``encoder`` opens an export directory and picks a runner; ``onnxruntime_runner``
and ``tensorrt_runner`` each wrap one inference library, imported when a
runner is made. Names load on first use.
"""

from dagh._optional import lazy_exports

_EXPORTS = {
    "Encoder": "dagh.runtime.encode.encoder",
    "PRECISIONS": "dagh.runtime.encode.encoder",
    "BACKENDS": "dagh.runtime.encode.encoder",
    "OnnxRunner": "dagh.runtime.encode.onnxruntime_runner",
    "TensorRTRunner": "dagh.runtime.encode.tensorrt_runner",
    "EngineMismatchError": "dagh.runtime.encode.tensorrt_runner",
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
