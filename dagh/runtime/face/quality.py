"""Quality gates: a face that cannot be recognized reliably is reported as unusable, not matched.

A bad crop is neither named (a wrong name) nor called a stranger (a wrong
"unknown"): it gets no decision at all. Each gate has a documented default and
can be changed, or switched off with None:

- ``min_face``: the face box's shorter side, in frame pixels. A face smaller than
  the model's input carries less detail than the model was trained on.
  Defaults to the model's input size (Recognizer sets it), at least 16 px.
- ``max_clipped``: the share of the face box (with the alignment margin) that
  may lie outside the frame. Defaults to 0.10.
- ``min_sharpness``: the variance of the Laplacian of the aligned crop's grey
  levels (0..255, squared), at the model's input size: blur matters as the model
  sees it. Defaults to 25. Measured (tests/runtime/test_face.py): synthetic 32 px
  crops 624 or more (1st percentile), the same blurred by a Gaussian of sigma
  2 px median 7.5; the astronaut photo's 112 px crop 598, blurred by sigma 1,
  2, 3 frame px 76, 12.6, 4.7.
- ``min_score``: the detector's confidence. Defaults to 0.9.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dagh.runtime.face.detect import Detection


@dataclasses.dataclass(frozen=True)
class QualityGates:
    """Thresholds below which a face is unusable (None switches a gate off); see the module docstring."""

    min_face: float | None = 16.0
    max_clipped: float | None = 0.10
    min_sharpness: float | None = 25.0
    min_score: float | None = 0.9

    def check(self, detection: Detection, frame_shape: tuple[int, ...], crop: np.ndarray | None) -> str | None:
        """None if the face passes every gate, else the reason it is unusable (one short phrase)."""
        if self.min_score is not None and detection.score < self.min_score:
            return f"low detector confidence ({detection.score:.2f} < {self.min_score:.2f})"
        side = min(detection.width, detection.height)
        if self.min_face is not None and side < self.min_face:
            return f"face too small ({side:.0f} px < {self.min_face:.0f} px)"
        if self.max_clipped is not None:
            clipped = clipped_share(detection.box, frame_shape)
            if clipped > self.max_clipped:
                return f"face clipped by the frame edge ({100 * clipped:.0f}% outside)"
        if self.min_sharpness is not None and crop is not None:
            value = sharpness(crop)
            if value < self.min_sharpness:
                return f"face too blurred (sharpness {value:.1f} < {self.min_sharpness:.1f})"
        return None


def clipped_share(box, frame_shape) -> float:
    """The share of ``box`` (x1, y1, x2, y2) that lies outside a frame of ``frame_shape`` (H, W, ...)."""
    x1, y1, x2, y2 = box
    h, w = frame_shape[:2]
    area = max(x2 - x1, 0.0) * max(y2 - y1, 0.0)
    if area <= 0:
        return 1.0
    inside = max(0.0, min(x2, w) - max(x1, 0.0)) * max(0.0, min(y2, h) - max(y1, 0.0))
    return 1.0 - inside / area


def sharpness(crop: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the crop's grey levels (uint8 HxWx3 or HxW)."""
    grey = crop.astype(np.float32)
    if grey.ndim == 3:
        grey = grey @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = (grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1])
    return float(lap.var()) if lap.size else 0.0
