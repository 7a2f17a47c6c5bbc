import numpy as np
import pytest
from PIL import Image

from dagh.errors import ConfigError, DataError
from dagh.runtime.preprocess import PreprocessConfig, preprocess_batch

CFG = PreprocessConfig(size=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))


def test_normalization_matches_the_formula(rng):
    img = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    out = preprocess_batch(img, CFG)
    assert out.shape == (2, 3, 32, 32) and out.dtype == np.float32
    ref = ((img / 255.0 - np.array(CFG.mean)) / np.array(CFG.std)).transpose(0, 3, 1, 2)
    assert np.allclose(out, ref, atol=1e-5)


def test_bgr_input_is_converted(rng):
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(preprocess_batch(img[..., ::-1], CFG, color_order="BGR"), preprocess_batch(img, CFG))


def test_paths_pil_and_resize(tmp_path, rng):
    img = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    from_path = preprocess_batch([str(tmp_path / "a.png")], CFG)
    from_pil = preprocess_batch(Image.fromarray(img), CFG)
    assert from_path.shape == (1, 3, 32, 32) and np.array_equal(from_path, from_pil)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 32, 32, 3), np.float32), "uint8"),
    (np.zeros((32, 32, 4), np.uint8), "3 color channels"),
    (np.zeros((32, 32), np.uint8), "HWC or NHWC"),
    (np.full((32, 32, 3), np.nan, np.float32), "NaN"),
])
def test_bad_images_are_named(bad, message):
    with pytest.raises(DataError, match=message):
        preprocess_batch(bad, CFG)


def test_unreadable_path(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match="x.jpg. is not an image Pillow can read"):
        preprocess_batch([str(tmp_path / "x.jpg")], CFG)


def test_bad_config():
    with pytest.raises(ConfigError):
        PreprocessConfig(color_order="RGBA")
    with pytest.raises(ConfigError):
        PreprocessConfig(std=(0, 1, 1))
    assert PreprocessConfig.from_dict(CFG.to_dict()) == CFG
