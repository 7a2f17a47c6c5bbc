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
from dagh.runtime.face.align import face_crop
from dagh.runtime.face.detect import Detector

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def single_face_crop(rgb: np.ndarray, detector: Detector, template, size: int) -> tuple[np.ndarray | None, str]:
    """(the size x size crop of the photo's one face, "") or (None, why not: "no face" / "N faces")."""
    faces = detector.detect(rgb)
    if not faces:
        return None, "no face"
    if len(faces) > 1:
        return None, f"{len(faces)} faces"
    return face_crop(rgb, faces[0], template, size), ""


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


def photo_crops(photos, detector: Detector, template, size: int, *, strict: bool, skipped: dict[str, list[str]]):
    """Yield (name, path, crop) for each (name, photo path) whose photo shows one face.

    Unreadable photos and photos with no face or several are recorded in ``skipped``
    (reason -> paths), or, with ``strict``, raise a DataError naming the photo."""
    from dagh.runtime.preprocess import load_image

    for name, path in photos:
        try:
            rgb = load_image(path)
        except DataError:
            if strict:
                raise
            skipped.setdefault("unreadable", []).append(str(path))
            continue
        crop, reason = single_face_crop(rgb, detector, template, size)
        if crop is None:
            if strict:
                raise DataError(f"{os.fspath(path)}: {reason}; each photo must show one face "
                                "(without --strict such photos are skipped and counted)")
            skipped.setdefault("no face" if reason == "no face" else "several faces", []).append(str(path))
            continue
        yield name, path, crop
