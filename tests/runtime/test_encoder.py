import json
import subprocess
import sys

import numpy as np
import pytest

from dagh.errors import ConfigError
from dagh.manifest import ManifestError
from dagh.runtime.bits import unpack_codes
from dagh.runtime.encode.encoder import Encoder
from dagh.runtime.encode.onnxruntime_runner import OnnxRunner


def test_encode_packs_the_onnx_codes(export_dir, rng):
    encoder = Encoder.open(export_dir)
    assert encoder.backend == "onnxruntime" and "CPUExecutionProvider" in encoder.providers
    crops = rng.integers(0, 256, (5, 40, 40, 3), dtype=np.uint8)  # resized to the model's size
    packed, h = encoder.encode(crops, return_h=True)
    assert packed.dtype == np.uint8 and packed.shape == (5, (encoder.bits + 7) // 8)
    assert np.array_equal(unpack_codes(packed, encoder.bits), np.where(h >= 0, 1, -1))
    from dagh.runtime.preprocess import preprocess_batch

    codes, _ = OnnxRunner(export_dir / "model.onnx").run(preprocess_batch(crops, encoder.preprocess))
    assert np.array_equal(unpack_codes(packed, encoder.bits), codes.astype(np.int8))
    bgr = encoder.encode(crops[..., ::-1], color_order="BGR")
    assert np.array_equal(bgr, packed)


def test_fp16_and_missing_precision(export_dir):
    assert Encoder.open(export_dir, precision="fp16").precision == "fp16"
    with pytest.raises(ConfigError, match="no int8 ONNX model"):
        Encoder.open(export_dir, precision="int8")
    with pytest.raises(ConfigError, match="no int8 TensorRT engine|no fp32 TensorRT engine"):
        Encoder.open(export_dir, precision="fp32", backend="tensorrt")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ConfigError, match="no CUDAExecutionProvider"):
            Encoder.open(export_dir, providers=["CUDAExecutionProvider"])


def test_tampered_export_is_refused(export_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(export_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"][0]["sha256"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="sha256"):
        Encoder.open(copy)


def test_runtime_imports_without_torch():
    code = ("import sys, dagh.runtime, dagh.runtime.encode.encoder, dagh.runtime.search.index, dagh.runtime.gallery.file, "
            "dagh.runtime.bits, dagh.manifest; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_encode_and_search_end_to_end_without_torch(export_dir, tmp_path):
    """The whole CPU runtime path in a fresh interpreter: encode, gallery file, index search."""
    code = f"""
import sys, numpy as np
from dagh.runtime.encode.encoder import Encoder
from dagh.runtime.gallery.file import save_gallery, load_gallery
enc = Encoder.open({str(export_dir)!r})
crops = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
codes = enc.encode(crops)
save_gallery({str(tmp_path / 'g.dgal')!r}, codes, np.arange(20) + 100, enc.bits)
index = load_gallery({str(tmp_path / 'g.dgal')!r}, bits=enc.bits).to_index()
d, i = index.search(enc.encode(crops[:3]), 1)
assert (d[:, 0] == 0).all(), d
# the hit is the first-inserted gallery entry with the query's exact code (ties by insertion order)
for row, hit in enumerate(i[:, 0]):
    first = next(j for j in range(20) if (codes[j] == codes[row]).all())
    assert hit == 100 + first, (row, hit, first)
assert 'torch' not in sys.modules
print('RUNTIME-OK')
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "RUNTIME-OK" in out.stdout, out.stderr


def test_tensorrt_backend_without_an_engine_or_tensorrt_is_a_clear_error(export_dir, monkeypatch):
    """The fixture export has no engine: asking for the TensorRT backend says how to get one; with
    tensorrt absent, auto falls to onnxruntime (the one documented choice), never silently for 'tensorrt'."""
    from dagh.errors import ConfigError

    with pytest.raises(ConfigError, match="no fp16 TensorRT engine"):
        Encoder.open(export_dir, precision="fp16", backend="tensorrt")
    assert Encoder.open(export_dir, precision="fp16", backend="auto").backend == "onnxruntime"
