"""Face alignment: a 5-point similarity transform onto the model's landmark template.

Coordinates are continuous pixels: pixel (i, j) covers [i, i + 1) x [j, j + 1),
its centre at (i + 0.5, j + 0.5), as the detector's boxes and landmarks are.

The template says where the eyes, nose tip and mouth corners sit in the
model's training crops, in units of the crop side (0..1, x right, y down, in
dagh.runtime.face.detect's landmark order). It belongs to the model: it is
stored in the checkpoint and the export manifest (``PreprocessConfig.face_template``),
and the same aligner makes training crops from raw photos (``dagh-align``),
so training and deployment see faces the same way.

A detection without landmarks is cropped by its box instead: a square around
the box centre, ``BOX_MARGIN`` wider than the box's longer side on each side.
"""

from __future__ import annotations

import numpy as np

from dagh.errors import ConfigError

# InsightFace / ArcFace's 112 x 112 template, as fractions of the side: the common alignment of real
# face crops (LFW-style). A model trained on crops aligned this way carries it in its config.
ARCFACE_TEMPLATE = ((0.341916, 0.461574), (0.656534, 0.459941), (0.500225, 0.640505),
                    (0.370975, 0.824691), (0.631516, 0.823253))
BOX_MARGIN = 0.15  # of the box's longer side, on each side, for box crops (no landmarks)


def check_template(points) -> tuple[tuple[float, float], ...]:
    """A template as 5 (x, y) pairs in (0, 1); ConfigError otherwise."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.shape != (5, 2) or not np.all(np.isfinite(arr)) or arr.min() <= 0 or arr.max() >= 1:
        raise ConfigError(f"a face template is 5 (x, y) points inside the crop, as fractions of its side "
                          f"(0..1); got {points!r}")
    if not arr[0, 0] < arr[1, 0]:
        raise ConfigError("a face template lists the image-left eye first (smaller x)")
    return tuple((float(x), float(y)) for x, y in arr)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity (rotation, uniform scale, translation) that maps ``src`` [n, 2] onto ``dst``
    [n, 2] best in least squares (Umeyama, 1991; no reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ sign @ vt
    variance = (s ** 2).sum() / len(src)
    scale = (sigma * np.diag(sign)).sum() / variance if variance > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_d - matrix[:, :2] @ mu_s
    return matrix


def warp(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``rgb`` mapped by the 2 x 3 ``matrix`` (frame -> crop pixels) into a size x size crop (bilinear)."""
    from PIL import Image

    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]  # Pillow asks crop -> frame
    # Only the frame region the crop samples goes to Pillow (one copy of a 640x480 frame per face
    # was most of the alignment's time): the crop's corners mapped back, plus a pixel for bilinear.
    corners = inverse @ np.array([[0, size, 0, size], [0, 0, size, size], [1, 1, 1, 1]], np.float64)
    h, w = rgb.shape[:2]
    x0, y0 = (max(0, int(np.floor(corners[i].min())) - 1) for i in (0, 1))
    x1, y1 = min(w, int(np.ceil(corners[0].max())) + 2), min(h, int(np.ceil(corners[1].max())) + 2)
    if x1 <= x0 or y1 <= y0:  # the crop lies wholly outside the frame
        return np.zeros((size, size, 3), np.uint8)
    inverse[:, 2] -= (x0, y0)
    coefficients = tuple(float(v) for v in inverse.ravel())
    image = Image.fromarray(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
    out = image.transform((size, size), Image.AFFINE, coefficients, resample=Image.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def template_pixels(template, size: int) -> np.ndarray:
    """The template's points in the pixels of a size x size crop ([5, 2])."""
    return np.asarray(template, np.float64) * size


def align_face(rgb: np.ndarray, landmarks: np.ndarray, template, size: int) -> np.ndarray:
    """The size x size crop in which ``landmarks`` ([5, 2] frame pixels) land on ``template``."""
    return warp(rgb, similarity_transform(landmarks, template_pixels(template, size)), size)


def box_matrix(box, size: int, margin: float = BOX_MARGIN) -> np.ndarray:
    """The 2 x 3 map from the frame onto a size x size square around ``box`` (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    scale = size / max(side, 1e-6)
    return np.array([[scale, 0.0, size / 2 - scale * cx], [0.0, scale, size / 2 - scale * cy]])


def crop_box(rgb: np.ndarray, box, size: int, margin: float = BOX_MARGIN) -> np.ndarray:
    """A size x size crop of the square around ``box`` (``margin`` of its longer side added on each side);
    a box that is the whole image (pre-cropped faces) takes ``margin`` 0."""
    h, w = rgb.shape[:2]
    if tuple(box) == (0.0, 0.0, float(w), float(h)):
        margin = 0.0
        if h == w == size:
            return np.ascontiguousarray(rgb)
    return warp(rgb, box_matrix(box, size, margin), size)


def face_crop(rgb: np.ndarray, detection, template, size: int) -> np.ndarray:
    """The size x size crop of a Detection: landmark-aligned onto ``template`` where the detection has
    landmarks and the model a template, else cropped by its box."""
    if detection.landmarks is not None and template is not None:
        return align_face(rgb, detection.landmarks, template, size)
    return crop_box(rgb, detection.box, size)
