"""Image files as untrusted data: read into uint8 RGB, or refused with one line saying why.

    rgb = read_image("photo.jpg")            # uint8 [H, W, 3], EXIF orientation applied

The size is checked from the header, before any pixel is decoded, against a
pixel limit suited to face photos (``DEFAULT_MAX_PIXELS``, 50 MP: a 48 MP
phone photo passes, a decompression bomb does not). ``max_pixels`` or the
environment variable ``DAGH_MAX_IMAGE_PIXELS`` changes it. Every mode Pillow
reads becomes RGB: 1-bit, grayscale, 16-bit (scaled, not clipped), palette
(with its transparency), CMYK, RGBA (alpha dropped); an animation gives its
first frame. Zero-byte, non-image, truncated or corrupt files are a DataError.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from dagh.errors import DataError

DEFAULT_MAX_PIXELS = 50_000_000
MAX_PIXELS_ENV = "DAGH_MAX_IMAGE_PIXELS"


def max_pixels() -> int:
    """The pixel limit in force: ``DAGH_MAX_IMAGE_PIXELS`` when set, else DEFAULT_MAX_PIXELS."""
    value = os.environ.get(MAX_PIXELS_ENV)
    if value is None:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        raise DataError(f"{MAX_PIXELS_ENV}={value!r} is not a whole number of pixels") from None
    if limit < 1:
        raise DataError(f"{MAX_PIXELS_ENV} must be at least 1, got {limit}")
    return limit


def read_image(path: str | os.PathLike, *, limit: int | None = None) -> np.ndarray:
    """Decode the image file at ``path`` into a uint8 RGB [H, W, 3] array (see the module docstring)."""
    from PIL import Image, UnidentifiedImageError

    name = os.fspath(path)
    limit = max_pixels() if limit is None else limit
    try:
        if os.path.getsize(name) == 0:
            raise DataError(f"image {name!r} is an empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # our limit decides, loudly
            with Image.open(name) as img:  # reads the header only
                width, height = img.size
                if width * height > limit:
                    raise DataError(too_large(name, width, height, limit))
                img.seek(0)  # an animation: its first frame
                img.load()
                return to_rgb(img)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"image {name!r} does not exist") from None
    except UnidentifiedImageError:
        raise DataError(f"{name!r} is not an image Pillow can read (JPEG, PNG, BMP, WebP, ...)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own header check fired first (above its 89 / 179 MP); say it as ours does
        import re

        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found.group(1)) / 1e6:.0f} MP, " if found else ""
        raise DataError(f"image {name!r} is refused unread: {pixels}above the {limit / 1e6:g} MP limit for face "
                        f"photos (a decompression bomb?); downscale it, or raise {MAX_PIXELS_ENV}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt data
        raise DataError(f"image {name!r} is truncated or corrupt ({type(exc).__name__}: {exc}); re-save or "
                        "remove it") from None


def too_large(name: str, width: int, height: int, limit: int) -> str:
    return (f"image {name!r} is {width} x {height} pixels ({width * height / 1e6:.0f} MP), above the "
            f"{limit / 1e6:g} MP limit for face photos; downscale it, or raise {MAX_PIXELS_ENV}")


def to_rgb(img: Any) -> np.ndarray:
    """A loaded Pillow image as uint8 RGB, EXIF orientation applied; 16-bit and float modes scaled."""
    from PIL import ImageOps

    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        gray = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)
