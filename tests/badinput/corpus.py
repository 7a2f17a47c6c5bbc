"""A corpus of bad (and awkward) image files, made on the spot with Pillow and zlib.

``make_images(directory)`` writes each and returns {name: (path, expectation)}: expectation is
"error" (must be refused with a DataError naming the file) or "rgb" (must decode into RGB, with
the check in ``CHECKS``).
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from pathlib import Path

import numpy as np


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a few bytes of (garbage) pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


@functools.lru_cache(maxsize=4)
def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A real decompression bomb: a valid all-black grayscale PNG, ~1 MB on disk, width*height bytes decoded."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + pixels
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts))
            + _png_chunk(b"IEND", b""))


def _face(size: int = 48) -> np.ndarray:
    """A small RGB test pattern: a gradient, with a red square top left (to see rotations)."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.stack([xx * 255 // size, yy * 255 // size, np.full_like(xx, 128)], axis=2).astype(np.uint8)
    image[:8, :8] = (255, 0, 0)
    return image


def make_images(directory: Path) -> dict[str, tuple[Path, str]]:
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    face = _face()
    out: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, expect: str) -> None:
        path = directory / name
        path.write_bytes(data)
        out[name] = (path, expect)

    def saved(img, fmt: str, **kwargs) -> bytes:
        buffer = io.BytesIO()
        img.save(buffer, fmt, **kwargs)
        return buffer.getvalue()

    jpeg = saved(Image.fromarray(face), "JPEG", quality=95)
    put("zero_bytes.jpg", b"", "error")
    put("text_named.jpg", b"this is not an image, just text\n" * 4, "error")
    put("truncated.jpg", jpeg[: len(jpeg) // 2], "error")
    put("garbage_after_header.png", png_header_only(48, 48), "error")
    put("huge_header.png", png_header_only(30000, 30000), "error")
    put("sixteen_bit.png", saved(Image.fromarray((np.arange(48 * 48).reshape(48, 48) * 28).astype(np.uint16)),
                                 "PNG"), "rgb")
    put("one_bit.png", saved(Image.fromarray(face).convert("1"), "PNG"), "rgb")
    put("palette.png", saved(Image.fromarray(face).convert("P", palette=Image.ADAPTIVE), "PNG"), "rgb")
    transparent = Image.fromarray(face).convert("P", palette=Image.ADAPTIVE)
    transparent.info["transparency"] = 0
    put("palette_transparent.png", saved(transparent, "PNG", transparency=0), "rgb")
    put("cmyk.jpg", saved(Image.fromarray(face).convert("CMYK"), "JPEG"), "rgb")
    put("rgba.png", saved(Image.fromarray(np.dstack([face, np.full(face.shape[:2], 128, np.uint8)]), "RGBA"),
                          "PNG"), "rgb")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    put("exif_rotated.jpg", saved(Image.fromarray(face), "JPEG", quality=95, exif=exif.tobytes()), "rgb")
    frames = [Image.fromarray(face), Image.fromarray(255 - face)]
    put("animated.gif", saved(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100), "rgb")
    put("grayscale.png", saved(Image.fromarray(face).convert("L"), "PNG"), "rgb")
    return out


def check_rgb(name: str, rgb: np.ndarray) -> None:
    """What a good decode of each "rgb" file looks like."""
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, (name, rgb.shape, rgb.dtype)
    if name == "sixteen_bit.png":  # scaled from 16 bits, not clipped at 255
        assert 60 < rgb.mean() < 200 and rgb.min() < 10, (name, rgb.mean())
    if name == "exif_rotated.jpg":  # turned upright: the red corner moves from top left to top right
        assert rgb.shape[:2] == (48, 48)
        assert rgb[:6, -6:, 0].mean() > 200 and rgb[:6, -6:, 1].mean() < 80, name
    if name == "animated.gif":  # the first frame
        assert rgb[:6, :6, 0].mean() > 180, name
