"""Calibration images: readers over an image folder, the synthetic faces or an
.npy array, preprocessed exactly as the runtime does; drawn reproducibly
across identities, with a held-out part kept apart for choosing the method."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dagh.errors import DataError
from dagh.runtime.preprocess import PreprocessConfig, preprocess_batch, resize_batch

MIN_CALIBRATION_IMAGES = 32
HOLDOUT_FRACTION = 0.25
# The synthetic calibration faces use their own seed, so they never overlap the
# evaluation split that the export reports mAP on.
SYNTHETIC_CALIBRATION_SEED = 7919


@dataclasses.dataclass
class CalibrationSet:
    """Preprocessed float32 NCHW images: ``calibration`` feeds the calibrator,
    ``holdout`` is only used to compare candidate methods."""

    calibration: np.ndarray
    holdout: np.ndarray
    source: str
    holdout_crops: np.ndarray | None = None  # the held-out images as uint8 NHWC crops (dagh-export's check crops)


def load_calibration_images(spec, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 NHWC images (and identity labels when the source has them).

    ``spec``: "synthetic", an image folder, an .npy of uint8 crops, or a FaceSet already loaded
    (dagh-export's default for folder data: the checkpoint's training split)."""
    from dagh.data import FaceSet

    if isinstance(spec, FaceSet):
        return resize_batch(spec.images, size), spec.labels
    if spec == "synthetic":
        from dagh.data.synthetic import SyntheticConfig, make_synthetic_splits

        splits = make_synthetic_splits(SyntheticConfig(identities=64, train_per_identity=12, test_per_identity=1,
                                                       size=size, seed=SYNTHETIC_CALIBRATION_SEED))
        return splits.train.images, splits.train.labels
    path = Path(spec)
    if path.suffix == ".npy":
        if not path.is_file():
            raise DataError(f"calibration array {spec!r} does not exist")
        try:
            images = np.load(path, allow_pickle=False)  # data, never code
        except (ValueError, OSError) as exc:
            raise DataError(f"cannot read calibration array {spec!r}: {exc}") from exc
        if images.ndim != 4 or images.shape[-1] != 3:
            raise DataError(f"calibration array {spec!r} must be uint8 [N, H, W, 3] face crops, "
                            f"got shape {images.shape}")
        if images.dtype != np.uint8:
            raise DataError(f"calibration array {spec!r} must be uint8 (0..255), got {images.dtype}")
        if images.shape[1:3] != (size, size):
            raise DataError(f"calibration images are {images.shape[2]}x{images.shape[1]} but the model takes "
                            f"{size}x{size}; resize the crops to {size}x{size} first")
        return images, None
    from dagh.data.folder import load_image_folder

    faces, _ = load_image_folder(path, size)
    return faces.images, faces.labels


def draw_samples(n_images: int, labels: np.ndarray | None, count: int, seed: int) -> np.ndarray:
    """Indices of ``count`` images, round-robin across identities (shuffled within each)."""
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.permutation(n_images)[:count])
    per_identity = [rng.permutation(np.flatnonzero(labels == label)) for label in np.unique(labels)]
    order = []
    for depth in range(max(len(p) for p in per_identity)):
        order.extend(p[depth] for p in per_identity if depth < len(p))
    return np.sort(np.asarray(order[:count], dtype=np.int64))


def build_calibration_set(spec, preprocess: PreprocessConfig, samples: int = 512,
                          seed: int = 0, name: str | None = None) -> CalibrationSet:
    """Load, draw, split and preprocess the calibration images (``spec``: see load_calibration_images;
    ``name``: how reports call the source, by default ``spec``)."""
    name = name or str(spec)
    if samples < MIN_CALIBRATION_IMAGES:
        raise DataError(f"--calib-samples {samples} is too few; use at least {MIN_CALIBRATION_IMAGES}")
    images, labels = load_calibration_images(spec, preprocess.size)
    if len(images) < MIN_CALIBRATION_IMAGES:
        raise DataError(f"calibration data {name!r} holds {len(images)} images; INT8 calibration needs at "
                        f"least {MIN_CALIBRATION_IMAGES} (about 512 recommended) face crops")
    chosen = draw_samples(len(images), labels, samples, seed)
    rng = np.random.default_rng(seed + 1)
    shuffled = chosen[rng.permutation(len(chosen))]
    n_holdout = max(16, int(round(len(shuffled) * HOLDOUT_FRACTION)))
    holdout, calibration = np.sort(shuffled[:n_holdout]), np.sort(shuffled[n_holdout:])
    return CalibrationSet(preprocess_batch(images[calibration], preprocess),
                          preprocess_batch(images[holdout], preprocess), name, np.ascontiguousarray(images[holdout]))


class ArrayCalibrationReader:
    """onnxruntime's one-method calibration data reader over a preprocessed array."""

    def __init__(self, images: np.ndarray, input_name: str = "images", batch_size: int = 32):
        # onnxruntime's histogram calibrators (entropy, percentile) fail on a
        # ragged last batch, so use the largest batch size that divides the count.
        batch_size = max(d for d in range(1, min(batch_size, len(images)) + 1) if len(images) % d == 0)
        self.images, self.input_name, self.batch_size = images, input_name, batch_size
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self.images):
            return None
        batch = self.images[self._next:self._next + self.batch_size]
        self._next += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._next = 0
