"""Image preprocessing: the one implementation that training, calibration and
the runtime all use, so a face is normalized the same way everywhere.

Input images are uint8 HWC arrays (RGB or BGR, as the caller says), Pillow
images, or paths; output is float32 NCHW, ``(pixel / 255 - mean) / std`` per
channel, channels in RGB order.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from dagh.errors import ConfigError, DataError

COLOR_ORDERS = ("RGB", "BGR")


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """How a face crop becomes the network's input; travels with the model."""

    size: int = 32
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    color_order: str = "RGB"  # channel order the *network* expects
    # Where the 5 landmarks sit in the training crops, as fractions of the side (dagh.runtime.face.align);
    # None: crops were not landmark-aligned, the recognizer crops faces by their box.
    face_template: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not 8 <= self.size <= 1024:
            raise ConfigError(f"input size must be an integer in [8, 1024], got {self.size!r}")
        if self.color_order not in COLOR_ORDERS:
            raise ConfigError(f"color_order must be one of {COLOR_ORDERS}, got {self.color_order!r}")
        for name in ("mean", "std"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3:
                raise ConfigError(f"{name} needs 3 values (one per channel), got {value!r}")
            object.__setattr__(self, name, value)
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"std values must be positive, got {self.std!r}")
        if self.face_template is not None:
            from dagh.runtime.face.align import check_template

            object.__setattr__(self, "face_template", check_template(self.face_template))

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std),
                "color_order": self.color_order,
                "face_template": [list(p) for p in self.face_template] if self.face_template else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        try:
            template = data.get("face_template")
            return cls(size=int(data["size"]), mean=tuple(data["mean"]), std=tuple(data["std"]),
                       color_order=str(data.get("color_order", "RGB")),
                       face_template=tuple(tuple(p) for p in template) if template else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed preprocessing config {data!r}: {exc}") from exc


def load_image(source: Any, size: int | None = None) -> np.ndarray:
    """Read a path or Pillow image into a uint8 RGB HWC array, resized to ``size``.

    Files are untrusted data (dagh.runtime.image): size checked from the header against a pixel limit,
    EXIF orientation applied, every mode made RGB, a bad file a DataError naming it."""
    from PIL import Image

    from dagh.runtime.image import read_image, to_rgb

    if isinstance(source, (str, os.PathLike)):
        array = read_image(source)
    elif isinstance(source, Image.Image):
        array = to_rgb(source)
    else:
        raise DataError(f"expected an image path or PIL.Image, got {type(source).__name__}")
    if size is not None and array.shape[:2] != (size, size):
        array = np.asarray(Image.fromarray(array).resize((size, size), Image.BILINEAR), dtype=np.uint8)
    return array


def resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 NHWC batch to ``size`` x ``size`` with Pillow (bilinear)."""
    from PIL import Image

    if images.shape[1:3] == (size, size):
        return images
    out = np.empty((images.shape[0], size, size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    return out


def _as_uint8_batch(images: Any) -> np.ndarray:
    if isinstance(images, np.ndarray):
        arr = images
    elif isinstance(images, Sequence) and len(images) > 0 and not isinstance(images, str):
        arr = np.stack([load_image(im) if not isinstance(im, np.ndarray) else im for im in images])
    else:
        arr = np.stack([load_image(images)])
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise DataError(f"images must be HWC or NHWC, got an array of shape {arr.shape}")
    if arr.shape[-1] != 3:
        raise DataError(
            f"images must have 3 color channels in the last axis (HWC), got shape {arr.shape}; "
            "convert grayscale/RGBA images to RGB first"
        )
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            raise DataError("images contain NaN or infinite values")
        raise DataError(f"images must be uint8 (0..255), got dtype {arr.dtype}; "
                        "scale and cast with np.clip(x, 0, 255).astype(np.uint8)")
    return arr


def preprocess_batch(images: Any, config: PreprocessConfig, *, color_order: str = "RGB") -> np.ndarray:
    """Turn images into the network's float32 NCHW input.

    ``images``: a uint8 HWC or NHWC array, a Pillow image, a path, or a list of
    these. ``color_order`` is the order of the caller's arrays ("BGR" for
    OpenCV frames); it is converted to ``config.color_order``.
    """
    if color_order not in COLOR_ORDERS:
        raise ConfigError(f"color_order must be one of {COLOR_ORDERS}, got {color_order!r}")
    arr = _as_uint8_batch(images)
    if color_order != config.color_order:
        arr = arr[..., ::-1]
    if arr.shape[1:3] != (config.size, config.size):
        arr = resize_batch(np.ascontiguousarray(arr), config.size)
    # Fold /255, -mean and /std into one multiply-add per channel.
    scale = (1.0 / (255.0 * np.asarray(config.std, dtype=np.float32))).astype(np.float32)
    shift = (-np.asarray(config.mean, dtype=np.float32) / np.asarray(config.std, dtype=np.float32))
    out = arr.astype(np.float32) * scale + shift.astype(np.float32)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))
