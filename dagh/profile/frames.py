"""Camera-like test frames with real faces, shipped with dagh so profiling works offline on a device.

``face.jpg`` is the head of NASA's portrait of astronaut Eileen Collins (public
domain; the astronaut photo scikit-image ships), 150 x 180 px.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FACE = Path(__file__).with_name("face.jpg")
SPOTS = (((245, 150), 1.0), ((20, 40), 0.8), ((460, 40), 0.9), ((60, 280), 0.7), ((450, 270), 1.0))


def composed_frame(faces: int, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """An RGB uint8 frame (640 x 480 by default) holding ``faces`` (1..5) copies of the shipped head."""
    from PIL import Image

    if not 1 <= faces <= len(SPOTS):
        raise ValueError(f"faces must be in 1..{len(SPOTS)}")
    head = Image.open(FACE).convert("RGB")
    frame = Image.new("RGB", size, (90, 110, 100))
    for (x, y), scale in SPOTS[:faces]:
        frame.paste(head.resize((int(head.width * scale), int(head.height * scale))), (x, y))
    return np.asarray(frame)
