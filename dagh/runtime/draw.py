"""Pictures of what the recognizer decided: boxes, landmarks, names and distances drawn on a frame.

Green: known (name and distance). Orange: unknown (the nearest distance).
Grey: unusable (the reason). Pillow only.
"""

from __future__ import annotations

import numpy as np

COLORS = {"known": (40, 200, 80), "unknown": (245, 140, 30), "unusable": (150, 150, 150)}


def annotate(rgb: np.ndarray, matches, radius: int | None = None) -> np.ndarray:
    """A copy of the RGB uint8 frame with each Match drawn on it."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(image)
    width = max(2, round(min(image.size) / 200))
    try:
        font = ImageFont.load_default(size=max(12, round(min(image.size) / 30)))
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    for m in matches:
        kind = "unusable" if not m.usable else "known" if m.known else "unknown"
        color = COLORS[kind]
        x1, y1, x2, y2 = m.box
        draw.rectangle([x1, y1, x2, y2], outline=color, width=width)
        if m.landmarks is not None:
            for x, y in m.landmarks:
                draw.ellipse([x - width, y - width, x + width, y + width], fill=color)
        if kind == "known":
            text = f"{m.name if m.name is not None else m.id}  d={m.distance}"
        elif kind == "unknown":
            text = f"unknown  d={m.distance}" + (f">{radius}" if radius is not None else "")
        else:
            text = m.reason or "unusable"
        left, top, right, bottom = draw.textbbox((x1, y1), text, font=font)
        lift = bottom - top + 2 * width
        draw.rectangle([x1, y1 - lift, x1 + right - left + 2 * width, y1], fill=color)
        draw.text((x1 + width, y1 - lift + width - (top - y1)), text, fill=(0, 0, 0), font=font)
    return np.asarray(image)
