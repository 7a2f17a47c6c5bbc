"""The public API: `from dagh.runtime import ...` works, stays torch-free, and loads heavy modules only on use."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "onnxruntime", "numba", "tensorrt", "cv2", "pymilvus")


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    return set(filter(None, run(code).split(",")))


@pytest.mark.parametrize("statement", [
    "from dagh.runtime import Encoder, HammingIndex, load_gallery, save_gallery, append_gallery",
    "import dagh.runtime as r; [getattr(r, n) for n in r.__all__]",
    "from dagh.runtime.search import HammingIndex, Backend",
    "from dagh.runtime.encode import Encoder, OnnxRunner, TensorRTRunner",
    "from dagh.runtime.gallery import Gallery, load_gallery",
])
def test_names_load_without_heavy_modules(statement):
    assert loaded_after(statement) == set()


def test_heavy_modules_load_when_used():
    assert "numba" in loaded_after("from dagh.runtime import HammingIndex\nHammingIndex(48)")
    assert loaded_after("from dagh.runtime import HammingIndex\nHammingIndex(48, backend='numpy')") == set()


def test_every_public_name_is_the_modules_own():
    import dagh.runtime as runtime
    from dagh.runtime.gallery.file import load_gallery
    from dagh.runtime.search.index import HammingIndex

    assert runtime.HammingIndex is HammingIndex and runtime.load_gallery is load_gallery
    assert set(runtime.__all__) <= set(dir(runtime))
    with pytest.raises(AttributeError, match="no attribute 'Encodr'"):
        runtime.Encodr  # noqa: B018
