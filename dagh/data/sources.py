"""One typed description of where faces come from, and the loader behind it.

A :class:`DataSource` is stored in every checkpoint, so ``dagh-eval`` can
rebuild the same splits without being told again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dagh.data.faceset import Splits, drop_small_identities, split_per_identity
from dagh.errors import ConfigError, DataError

KINDS = ("synthetic", "folder", "ddh-pickle")


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where the faces come from and how they are split."""

    kind: str = "synthetic"
    path: str | None = None          # folder or pickle directory (not for synthetic)
    size: int = 32                   # images are resized to size x size
    seed: int = 0                    # synthetic rendering and split seed
    identities: int = 100            # synthetic only
    train_per_identity: int = 40     # synthetic only
    test_per_identity: int = 10      # synthetic only
    test_fraction: float = 0.2       # folder / pickle: share of each identity held out as queries
    bad_images: str = "error"        # folder: "error" or "skip" unreadable files
    min_images: int = 0              # folder: drop identities with fewer images (0 = refuse them)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"data kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind != "synthetic" and not self.path:
            raise ConfigError(f"data kind {self.kind!r} needs a path")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSource:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    @classmethod
    def parse(cls, spec: str, **options: Any) -> DataSource:
        """``"synthetic"``, or a path whose format is detected: a folder of
        identity sub-folders is an image folder; a folder of files is DDH pickles."""
        if spec == "synthetic":
            return cls(kind="synthetic", **options)
        path = Path(spec)
        if not path.exists():
            raise DataError(f"dataset {spec!r} does not exist; pass a folder or 'synthetic'")
        if not path.is_dir():
            raise DataError(f"dataset {spec!r} is not a folder; pass root/<identity>/*.jpg or a "
                            "folder of DDH pickles")
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
        if not entries:
            raise DataError(f"dataset folder {spec!r} is empty")
        kind = "folder" if any(p.is_dir() for p in entries) else "ddh-pickle"
        return cls(kind=kind, path=str(path), **options)

    def face_template(self):
        """Where the 5 landmarks sit in these crops (fractions of the side), or None where unknown.

        Synthetic faces: the renderer's geometry. An image folder made by ``dagh-align``: the
        template it recorded. Other folders and the DDH pickles: None (the recognizer box-crops)."""
        if self.kind == "synthetic":
            from dagh.data.synthetic import synthetic_face_template

            return synthetic_face_template()
        if self.kind == "folder":
            from dagh.data.aligner import read_template_record

            return read_template_record(self.path)
        return None

    def describe(self) -> str:
        if self.kind == "synthetic":
            return (f"synthetic faces ({self.identities} identities x "
                    f"{self.train_per_identity}+{self.test_per_identity} images, seed {self.seed})")
        return f"{self.kind} {self.path}"


def load_splits(source: DataSource, *, progress: bool = False, log=print) -> Splits:
    """Build the train (database) and test (query) splits ``source`` describes."""
    if source.kind == "synthetic":
        from dagh.data.synthetic import SyntheticConfig, make_synthetic_splits

        splits = make_synthetic_splits(SyntheticConfig(
            identities=source.identities, train_per_identity=source.train_per_identity,
            test_per_identity=source.test_per_identity, size=source.size, seed=source.seed))
    elif source.kind == "folder":
        from dagh.data.folder import load_image_folder

        faces, report = load_image_folder(source.path, source.size, bad_images=source.bad_images,
                                          progress=progress)
        if report.skipped:
            log(f"skipped {len(report.skipped)} unreadable image(s), e.g. {report.skipped[0]}")
        if source.min_images:
            faces, dropped = drop_small_identities(faces, source.min_images)
            if dropped:
                log(f"dropped {len(dropped)} identities with fewer than {source.min_images} images")
            if faces.num_identities < 2:
                raise DataError(f"fewer than 2 identities in {source.path!r} have "
                                f"{source.min_images}+ images; retrieval needs at least 2")
        splits = split_per_identity(faces, source.test_fraction, source.seed, source.to_dict())
    else:
        from dagh.data.ddh_pickle import load_ddh_pickles

        splits = load_ddh_pickles(source.path, source.test_fraction, source.seed)
        if splits.train.size != source.size:
            from dagh.data.faceset import FaceSet
            from dagh.runtime.preprocess import resize_batch

            splits = Splits(*(FaceSet(resize_batch(s.images, source.size), s.labels, s.names)
                              for s in (splits.train, splits.test)), splits.source)
    splits.source = source.to_dict()
    return splits
