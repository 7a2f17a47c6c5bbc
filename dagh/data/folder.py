"""An image-folder dataset: ``root/<identity>/*.jpg|png``, one folder per person."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from dagh.data.faceset import FaceSet
from dagh.errors import DataError
from dagh.runtime.face.crops import IMAGE_SUFFIXES
from dagh.runtime.preprocess import load_image

BAD_IMAGE_POLICIES = ("skip", "error")


@dataclasses.dataclass
class FolderLoadReport:
    """What loading a folder found besides the faces."""

    loaded: int = 0
    skipped: list[str] = dataclasses.field(default_factory=list)  # unreadable files


def load_image_folder(root: str | os.PathLike, size: int, *, bad_images: str = "error",
                      progress: bool = False) -> tuple[FaceSet, FolderLoadReport]:
    """Load every image under ``root/<identity>/``, resized to ``size``.

    ``bad_images="skip"`` skips unreadable or corrupt files and counts them;
    ``"error"`` (the default) refuses the folder, naming the first bad file.
    """
    if bad_images not in BAD_IMAGE_POLICIES:
        raise DataError(f"bad_images must be one of {BAD_IMAGE_POLICIES}, got {bad_images!r}")
    root = Path(root)
    if not root.exists():
        raise DataError(f"dataset folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise DataError(f"{str(root)!r} is not a folder; expected root/<identity>/*.jpg")
    identities = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [(i, f) for i, d in enumerate(identities) for f in sorted(d.iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
    if not files:
        raise DataError(
            f"dataset folder {str(root)!r} holds no images; expected one sub-folder per identity "
            f"with {'/'.join(IMAGE_SUFFIXES)} files (root/<identity>/<image>)"
        )
    report = FolderLoadReport()
    images, labels = [], []
    iterator = files
    if progress:
        from dagh.progress import progress_bar

        iterator = progress_bar(files, desc=f"loading {root.name}", unit="img")
    for label, path in iterator:
        try:
            images.append(load_image(path, size))
        except DataError as exc:
            if bad_images == "error":
                raise DataError(f"{exc}. Fix or remove the file, or pass --bad-images skip") from exc
            report.skipped.append(str(path))
            continue
        labels.append(label)
    if not images:
        raise DataError(f"none of the {len(files)} image files under {str(root)!r} could be read")
    report.loaded = len(images)
    faces = FaceSet(np.stack(images), np.asarray(labels), [d.name for d in identities])
    # Identities whose every image was skipped must not linger as empty classes.
    present = np.unique(faces.labels)
    if len(present) != faces.num_identities:
        remap = np.full(faces.num_identities, -1, np.int64)
        remap[present] = np.arange(len(present))
        faces = FaceSet(faces.images, remap[faces.labels], [faces.names[i] for i in present])
    return faces, report
