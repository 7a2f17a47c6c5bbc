"""Exact Hamming search over packed codes: HammingIndex and its backends.

``index`` holds HammingIndex (gallery, snapshots, argument checks) and picks a
backend by name; ``backend`` is the protocol every backend meets; ``cpu``
(numba, kernels in ``kernels/``), ``gpu`` (numba-cuda) and ``reference``
(numpy, faiss) are the backends, each loaded only when asked for. How the
kernels work: docs/search.md. Names load on first use.
"""

from dagh._optional import lazy_exports

_EXPORTS = {
    "HammingIndex": "dagh.runtime.search.index",
    "BACKENDS": "dagh.runtime.search.index",
    "Backend": "dagh.runtime.search.backend",
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
