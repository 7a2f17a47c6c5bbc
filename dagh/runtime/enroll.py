"""Enrollment: photos of people -> codes with ids and names, ready for a gallery.

``enroll_folder(ROOT, encoder, detector)`` takes ``ROOT/<name>/*.jpg``: each
photo's one face is found, aligned onto the model's template and encoded; a
photo with no face or several is skipped and counted (``strict``: refused).
Every photo that passes gives one code: several codes a person.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from dagh.errors import DataError
from dagh.runtime.face.crops import person_photos, photo_crops

ENCODE_BATCH = 64


@dataclasses.dataclass
class Enrollment:
    """Codes ready for a gallery: packed uint8 [n, ceil(bits/8)], int64 ids, one name a code."""

    codes: np.ndarray
    ids: np.ndarray
    labels: list[str]
    skipped: dict[str, list[str]]  # reason -> photo paths

    def summary(self) -> str:
        people = len(set(self.labels))
        parts = [f"{len(v)} skipped ({k})" for k, v in sorted(self.skipped.items())]
        return ", ".join([f"{len(self.labels)} codes of {people} people", *parts])


def enroll_photos(photos: Sequence[tuple[str, os.PathLike]], encoder, detector, *, strict: bool = False,
                  first_id: int = 0, progress=None) -> Enrollment:
    """(name, photo path) pairs -> an Enrollment; ids count up from ``first_id``."""
    template, size = encoder.preprocess.face_template, encoder.preprocess.size
    crops, labels, skipped = [], [], {}
    for name, _, crop in photo_crops(progress(photos) if progress else photos, detector, template, size,
                                     strict=strict, skipped=skipped):
        crops.append(crop)
        labels.append(name)
    if not crops:
        raise DataError(f"no usable face in any of the {len(photos)} photos")
    codes = np.concatenate([encoder.encode(np.stack(crops[i:i + ENCODE_BATCH]))
                            for i in range(0, len(crops), ENCODE_BATCH)])
    ids = np.arange(first_id, first_id + len(crops), dtype=np.int64)
    return Enrollment(codes, ids, labels, skipped)


def enroll_folder(root: str | os.PathLike, encoder, detector, *, strict: bool = False, first_id: int = 0,
                  progress=None) -> Enrollment:
    """``root/<name>/*.jpg`` -> an Enrollment (see the module docstring)."""
    return enroll_photos(person_photos(root), encoder, detector, strict=strict, first_id=first_id,
                         progress=progress)
