"""Image files as untrusted data (dagh.runtime.image): every awkward mode decodes, every bad file is a
DataError naming it, and a bomb is refused from its header before it costs memory."""

import resource

import numpy as np
import pytest

from dagh.errors import DaghError, DataError
from dagh.runtime.image import MAX_PIXELS_ENV, read_image
from tests.badinput.corpus import check_rgb, make_images, png_bomb


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_images(tmp_path_factory.mktemp("images"))


def test_every_file_of_the_corpus(corpus):
    for name, (path, expect) in corpus.items():
        if expect == "error":
            with pytest.raises(DataError) as refused:
                read_image(path)
            message = str(refused.value)
            assert name in message and "\n" not in message, message
        else:
            check_rgb(name, read_image(path))


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())  # 30000 x 30000: 900 MB once decoded
    assert bomb.stat().st_size < 2_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match=r"bomb.png' is refused unread: 900 MP, above the 50 MP limit"):
        read_image(bomb)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, f"refusing the bomb cost {grown_mb:.0f} MB"


def test_an_image_between_our_limit_and_pillows_is_refused_from_its_header(tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(png_bomb(8000, 8000))  # 64 MP: below Pillow's own 89 MP warning, above our 50 MP
    with pytest.raises(DataError, match=r"big.png' is 8000 x 8000 pixels \(64 MP\), above the 50 MP limit"):
        read_image(big)


def test_the_pixel_limit_is_configurable(corpus, monkeypatch, tmp_path):
    path = corpus["grayscale.png"][0]  # 48 x 48
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    with pytest.raises(DataError, match=f"above the 0.001 MP limit.*raise {MAX_PIXELS_ENV}"):
        read_image(path)
    assert read_image(path, limit=48 * 48).shape == (48, 48, 3)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(DataError, match="not a whole number"):
        read_image(path)


def test_the_encoder_refuses_a_bomb_with_a_dagh_error(export_dir, tmp_path):
    """Regression: Encoder.encode on a bomb raised Pillow's DecompressionBombError, not a DaghError."""
    from dagh.runtime import Encoder

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())
    encoder = Encoder.open(export_dir)
    with pytest.raises(DaghError, match="bomb.png"):
        encoder.encode([bomb])
    with pytest.raises(DaghError, match="bomb.png"):
        encoder.encode(bomb)
    assert encoder.encode(np.zeros((2, 32, 32, 3), np.uint8)).shape[0] == 2
