"""The pickled 32x32 YouTube Faces / FaceScrub release of DDH.

The release is a directory of Python-2 pickles, each holding ``(x, y)``: ``x``
rows are flat channel-first 3072 values (3x32x32), ``y`` identity labels.
Files are read in sorted order; a file whose name contains "test" goes to the
test split, "train" to the train split.

These files come from the internet, so they are unpickled with a restricted
unpickler that admits only what numpy array reconstruction needs; anything
else (a pickle that would call ``os.system``, say) is refused.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from dagh.data.faceset import FaceSet, Splits, split_per_identity
from dagh.errors import DataError, UnsafeFileError

# (module, name) pairs a pickled numpy array may reference. Python-2 era pickles
# name numpy.core.multiarray; numpy 2 moved it to numpy._core.multiarray.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"),
    # Python 3 writes array bytes in protocol 2 as _codecs.encode(str, "latin1"): pure data.
    ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise UnsafeFileError(
                f"refusing to unpickle {module}.{name}: DDH dataset pickles may hold only numpy "
                "arrays and lists, and this file asks for more. Do not trust this file."
            )
        if module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            from numpy._core import multiarray
            return getattr(multiarray, name)
        if module in ("copy_reg", "copyreg"):
            import copyreg
            return getattr(copyreg, name)
        if module in ("__builtin__", "builtins"):
            return object
        if module == "_codecs":
            import codecs
            return codecs.encode
        return getattr(np, name)


def restricted_load(data: bytes, source: str = "<bytes>"):
    """Unpickle ``data`` admitting only numpy arrays, lists, tuples, numbers, strings."""
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafeFileError as exc:
        raise UnsafeFileError(f"{source}: {exc}") from exc
    except Exception as exc:  # any malformed pickle is a data error, not a crash
        raise DataError(f"{source} is not a readable dataset pickle: {type(exc).__name__}: {exc}") from exc


def _read_file(path: Path) -> FaceSet:
    obj = restricted_load(path.read_bytes(), str(path))
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise DataError(f"{path} must hold a pair (x, y), got {type(obj).__name__}")
    x, y = np.asarray(obj[0]), np.asarray(obj[1]).reshape(-1)
    if x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: x must be [N, 3072] (flat 3x32x32 rows), got shape {x.shape}")
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} images but {len(y)} labels")
    if x.dtype != np.uint8:
        x = np.clip(x, 0, 255).astype(np.uint8)
    images = np.ascontiguousarray(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return FaceSet(images, y.astype(np.int64), [])


def load_ddh_pickles(root: str | os.PathLike, test_fraction: float = 0.2, seed: int = 0) -> Splits:
    """Load the DDH pickles under ``root`` into train/test splits (labels made dense)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"DDH pickle folder {str(root)!r} does not exist or is not a folder")
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"DDH pickle folder {str(root)!r} is empty")
    parts = {"train": [], "test": [], "any": []}
    for path in files:
        kind = "test" if "test" in path.name.lower() else "train" if "train" in path.name.lower() else "any"
        parts[kind].append(_read_file(path))
    every = parts["train"] + parts["test"] + parts["any"]
    raw = np.unique(np.concatenate([f.labels for f in every]))
    names = [str(v) for v in raw]

    def merge(sets: list[FaceSet]) -> FaceSet:
        images = np.concatenate([s.images for s in sets])
        labels = np.searchsorted(raw, np.concatenate([s.labels for s in sets]))
        return FaceSet(images, labels, names)

    source = {"kind": "ddh-pickle", "path": str(root), "test_fraction": test_fraction, "seed": seed}
    if parts["train"] and parts["test"] and not parts["any"]:
        return Splits(merge(parts["train"]), merge(parts["test"]), source)
    return split_per_identity(merge(every), test_fraction, seed, source)
