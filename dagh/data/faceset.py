"""The in-memory face dataset every source produces: uint8 images plus labels."""

from __future__ import annotations

import dataclasses

import numpy as np

from dagh.errors import DataError


@dataclasses.dataclass
class FaceSet:
    """Face crops of equal size with integer identity labels.

    ``images``: uint8 [N, H, W, 3] RGB; ``labels``: int64 [N] indexing ``names``.
    """

    images: np.ndarray
    labels: np.ndarray
    names: list[str]

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise DataError(f"face images must be uint8 [N,H,W,3], got {self.images.dtype} {self.images.shape}")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(f"{self.images.shape[0]} images but labels of shape {self.labels.shape}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    @property
    def num_identities(self) -> int:
        return len(self.names)

    def subset(self, index: np.ndarray) -> FaceSet:
        return FaceSet(self.images[index], self.labels[index], self.names)


@dataclasses.dataclass
class Splits:
    """Train split (the retrieval database) and test split (the queries)."""

    train: FaceSet
    test: FaceSet
    source: dict  # how to rebuild these splits; stored in checkpoints


def split_per_identity(faces: FaceSet, test_fraction: float, seed: int, source: dict) -> Splits:
    """Split each identity's images into train and test, reproducibly for a seed.

    Every identity needs at least two images (one query, one database entry);
    otherwise retrieval for it is undefined, so this is an error naming them.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test fraction must be in (0, 1), got {test_fraction}")
    counts = np.bincount(faces.labels, minlength=faces.num_identities)
    small = [faces.names[i] for i in np.flatnonzero(counts < 2)]
    if small:
        shown = ", ".join(repr(s) for s in small[:5]) + (" ..." if len(small) > 5 else "")
        raise DataError(
            f"{len(small)} identities have fewer than 2 images ({shown}); each identity needs "
            "at least one query and one database image. Add images or remove those identities "
            "(dagh-train --min-images 2 drops them)."
        )
    rng = np.random.default_rng(seed)
    test_idx, train_idx = [], []
    for label in range(faces.num_identities):
        idx = np.flatnonzero(faces.labels == label)
        idx = idx[rng.permutation(len(idx))]
        n_test = min(max(1, int(round(len(idx) * test_fraction))), len(idx) - 1)
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    return Splits(faces.subset(np.sort(np.concatenate(train_idx))),
                  faces.subset(np.sort(np.concatenate(test_idx))), source)


def drop_small_identities(faces: FaceSet, min_images: int) -> tuple[FaceSet, list[str]]:
    """Remove identities with fewer than ``min_images`` images; relabel the rest densely."""
    counts = np.bincount(faces.labels, minlength=faces.num_identities)
    keep = np.flatnonzero(counts >= min_images)
    dropped = [faces.names[i] for i in np.flatnonzero(counts < min_images)]
    remap = np.full(faces.num_identities, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    mask = remap[faces.labels] >= 0
    return FaceSet(faces.images[mask], remap[faces.labels[mask]], [faces.names[i] for i in keep]), dropped
