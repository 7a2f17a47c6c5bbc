"""The torch-free runtime that ships inside camera apps.

Importing ``dagh.runtime`` needs only the standard library and numpy; Pillow,
onnxruntime, numba and CUDA are loaded when first used.
"""

from dagh.runtime.preprocess import PreprocessConfig, preprocess_batch

__all__ = ["PreprocessConfig", "preprocess_batch"]
