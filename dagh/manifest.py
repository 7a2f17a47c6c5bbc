"""manifest.json of an export directory: schema-versioned, sha256 per file.

Torch-free: the runtime reads it to learn the input spec, code length and
files, and to check that nothing was altered or swapped since export.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from dagh.errors import DaghError

SCHEMA = "dagh-export-manifest"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 lacks open_set and input.face_template: read as None
MANIFEST_NAME = "manifest.json"


class ManifestError(DaghError):
    """manifest.json is missing, malformed, of another schema version, or its files do not match."""


@dataclasses.dataclass
class InputSpec:
    name: str
    shape: list[Any]          # ["N", 3, H, W]
    dtype: str                # "float32"
    layout: str               # "NCHW"
    color_order: str          # channel order the network expects
    mean: list[float]
    std: list[float]
    # Where the 5 landmarks sit in the model's crop, as fractions of its side, x right, y down
    # (PreprocessConfig.face_template); None: the model's crops were not landmark-aligned
    face_template: list[list[float]] | None = None

    @property
    def size(self) -> int:
        return int(self.shape[-1])


@dataclasses.dataclass
class FileEntry:
    path: str                 # relative to the export directory
    kind: str                 # "onnx", "engine", "calibration", "timing-cache"
    precision: str | None     # "fp32", "fp16", "int8" or None
    sha256: str
    bytes: int
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # opset, TensorRT version, GPU, ...


@dataclasses.dataclass
class OpenSet:
    """The open-set decision the export measured: a face is known when its distance is <= ``radius``."""

    radius: int               # Hamming bits; -1: no radius meets target_far, accept nothing
    target_far: float         # the false-accept rate the radius was chosen for
    measured_far: float       # impostor pairs within the radius / impostor pairs
    tar: float                # genuine pairs within the radius / genuine pairs
    genuine_pairs: int
    impostor_pairs: int
    identities: str           # which faces: "unseen synthetic identities" or the test split
    far_measurable: bool = True  # False: fewer than 10 / target_far impostor pairs, measured_far is rough


@dataclasses.dataclass
class Manifest:
    code_bits: int
    input: InputSpec
    outputs: list[dict[str, Any]]
    files: list[FileEntry]
    model: dict[str, Any]
    source: dict[str, Any]
    build: dict[str, Any]
    reports: dict[str, Any] = dataclasses.field(default_factory=dict)  # parity, calibration, verification
    dagh_version: str = ""
    open_set: OpenSet | None = None

    def file(self, kind: str, precision: str | None = None) -> FileEntry | None:
        for entry in self.files:
            if entry.kind == kind and (precision is None or entry.precision == precision):
                return entry
        return None

    def to_json(self) -> str:
        data = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **dataclasses.asdict(self)}
        return json.dumps(data, indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str, source: str = MANIFEST_NAME) -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{source} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ManifestError(f"{source} is not a dagh export manifest")
        version = data.get("schema_version")
        if type(version) is not int or version not in READABLE_VERSIONS:
            raise ManifestError(
                f"{source} has schema version {version}; this dagh reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}. Re-export with this dagh, or install the dagh "
                "that wrote it")
        try:
            open_set = data.get("open_set")
            return cls(code_bits=int(data["code_bits"]), input=InputSpec(**data["input"]),
                       outputs=list(data["outputs"]), files=[FileEntry(**f) for f in data["files"]],
                       model=dict(data["model"]), source=dict(data["source"]), build=dict(data["build"]),
                       reports=dict(data.get("reports", {})), dagh_version=str(data.get("dagh_version", "")),
                       open_set=OpenSet(**open_set) if open_set is not None else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{source} is malformed: {type(exc).__name__}: {exc}") from exc


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(directory: Path, name: str, kind: str, precision: str | None, **details: Any) -> FileEntry:
    path = directory / name
    return FileEntry(name, kind, precision, sha256_file(path), path.stat().st_size, details)


def load_manifest(directory: str | os.PathLike, *, verify: bool = True) -> Manifest:
    """Read ``directory/manifest.json``; with ``verify``, check every file's size and sha256."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{str(directory)!r} has no {MANIFEST_NAME}; is it a dagh-export directory?")
    manifest = Manifest.from_json(path.read_text(encoding="utf-8"), str(path))
    if verify:
        for entry in manifest.files:
            verify_file(directory, entry)
    return manifest


def verify_file(directory: Path, entry: FileEntry) -> None:
    """Raise ManifestError unless ``entry``'s file exists with the recorded size and hash."""
    target = directory / entry.path
    if Path(entry.path).is_absolute() or ".." in Path(entry.path).parts:
        raise ManifestError(f"manifest names a file outside the export directory: {entry.path!r}")
    if not target.is_file():
        raise ManifestError(f"{entry.path} is listed in the manifest but missing from {str(directory)!r}")
    if target.stat().st_size != entry.bytes or sha256_file(target) != entry.sha256:
        raise ManifestError(f"{entry.path} does not match its sha256 in the manifest: the file was "
                            "changed or replaced after export. Re-export, or restore the original file")
