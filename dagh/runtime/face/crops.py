"""One face per photo: the step that enrollment and training-data alignment share.

A photo of a person (for a gallery, or for training) must show that person
alone: a photo with no face, or with several, is skipped and counted (or
refused where the caller is strict), never guessed at.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dagh.errors import DataError
from dagh.runtime.face.align import align_face, crop_box
from dagh.runtime.face.detect import Detector

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def single_face_crop(rgb: np.ndarray, detector: Detector, template, size: int) -> tuple[np.ndarray | None, str]:
    """(the size x size crop of the photo's one face, "") or (None, why not: "no face" / "N faces")."""
    faces = detector.detect(rgb)
    if not faces:
        return None, "no face"
    if len(faces) > 1:
        return None, f"{len(faces)} faces"
    face = faces[0]
    if face.landmarks is not None and template is not None:
        return align_face(rgb, face.landmarks, template, size), ""
    return crop_box(rgb, face.box, size), ""


def person_photos(root: str | os.PathLike) -> list[tuple[str, Path]]:
    """(person, photo) for every image under ``root/<person>/``, in sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{str(root)!r} is not a folder; expected ROOT/<person>/*.jpg")
    people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    photos = [(person.name, f) for person in people for f in sorted(person.iterdir())
              if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not photos:
        raise DataError(f"{str(root)!r} holds no photos; expected one sub-folder per person with "
                        f"{'/'.join(IMAGE_SUFFIXES)} files (ROOT/<person>/<photo>)")
    return photos
