"""Camera frames as the face room takes them: checked once, at the door.

A frame is a uint8 H x W x 3 array in the caller's colour order ("BGR" for
OpenCV, "RGB" for Pillow), a Pillow image or a path. Everything after this
check works on an RGB uint8 array and may assume it is sane.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dagh.errors import DataError

MAX_FRAME_PIXELS = 40_000_000  # 40 MP: beyond any camera frame; a 20000 x 20000 array is refused, not processed
COLOR_ORDERS = ("RGB", "BGR")


def as_rgb_frame(frame: Any, color_order: str = "BGR") -> np.ndarray:
    """A checked RGB uint8 [H, W, 3] view or copy of ``frame``; DataError naming the problem otherwise."""
    if color_order not in COLOR_ORDERS:
        raise DataError(f"color_order must be one of {COLOR_ORDERS}, got {color_order!r}")
    if isinstance(frame, (str, os.PathLike)) or type(frame).__module__.startswith("PIL"):
        from dagh.runtime.preprocess import load_image

        return load_image(frame)  # RGB already, whatever color_order says: a file has one order
    if not isinstance(frame, np.ndarray):
        raise DataError(f"a frame must be a uint8 HxWx3 numpy array, a Pillow image or a path, "
                        f"got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        hint = ("drop the alpha channel first (frame[..., :3])" if frame.ndim == 3 and frame.shape[2] == 4
                else "convert grayscale frames to 3 channels first (np.repeat(frame[..., None], 3, axis=2))"
                if frame.ndim == 2 else "pass one frame at a time")
        raise DataError(f"a frame must be H x W x 3, got shape {frame.shape}: {hint}")
    if frame.dtype != np.uint8:
        raise DataError(f"a frame must be uint8 (0..255), got {frame.dtype}; "
                        "scale and cast with np.clip(x, 0, 255).astype(np.uint8)")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"the frame is empty (shape {frame.shape})")
    if frame.shape[0] * frame.shape[1] > MAX_FRAME_PIXELS:
        raise DataError(f"the frame is {frame.shape[1]} x {frame.shape[0]} pixels, more than "
                        f"{MAX_FRAME_PIXELS // 1_000_000} MP; resize it before recognition")
    return frame[..., ::-1] if color_order == "BGR" else frame
