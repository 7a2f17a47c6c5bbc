"""dagh: the DAGH face-hashing network from training to an edge GPU.

Importing this package is cheap: it needs only the standard library. Heavy
modules (torch, onnxruntime, numba, tensorrt) are imported by the subpackages
that use them, and lazily where DESIGN.md says so.
"""

__version__ = "0.1.0"
