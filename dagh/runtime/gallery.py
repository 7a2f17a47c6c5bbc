"""Gallery files: packed codes and their ids on disk. No pickle: a validated binary format.

Layout (little-endian):

    offset  size            field
    0       8               magic b"DAGHGAL1"
    8       4   uint32      format version (1)
    12      4   uint32      code bits
    16      8   uint64      count
    24      4   uint32      bytes per packed row (ceil(bits / 8))
    28      36              reserved (zero)
    64      count*row       packed codes (uint8 rows, dagh.runtime.bits order)
    ...     0-7             zero padding to a multiple of 8
    ...     count*8 int64   ids
    ...     32              sha256 of everything before it

``save`` writes a temporary file, fsyncs and renames it over the target, so a
crash midway leaves the old gallery intact. ``load`` memory-maps the file and
validates magic, version, sizes, code length and checksum before use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import mmap
import os
import struct
from pathlib import Path

import numpy as np

from dagh.errors import DaghError
from dagh.fileio import atomic_write
from dagh.runtime.bits import check_packed, packed_bytes

MAGIC = b"DAGHGAL1"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sIIQI36x")
assert HEADER.size == 64
CHECKSUM_BYTES = 32


class GalleryError(DaghError):
    """A gallery file is truncated, corrupt, of another format or code length."""


@dataclasses.dataclass
class Gallery:
    """A loaded gallery: ``codes`` uint8 [n, ceil(bits/8)] and ``ids`` int64 [n] (memory-mapped)."""

    bits: int
    codes: np.ndarray
    ids: np.ndarray
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def to_index(self, backend: str = "cpu"):
        from dagh.runtime.index import HammingIndex

        index = HammingIndex(self.bits, backend=backend)
        index.add(self.codes, self.ids)
        return index


def _padding(n: int) -> int:
    return (-n) % 8


def save_gallery(path: str | os.PathLike, codes: np.ndarray, ids: np.ndarray, bits: int) -> None:
    """Write packed ``codes`` and ``ids`` atomically to ``path``."""
    codes = check_packed(codes, bits)
    ids = np.ascontiguousarray(np.asarray(ids).reshape(-1), dtype="<i8")
    if len(ids) != len(codes):
        raise GalleryError(f"{len(codes)} codes but {len(ids)} ids")
    header = HEADER.pack(MAGIC, FORMAT_VERSION, bits, len(codes), packed_bytes(bits))
    body = np.ascontiguousarray(codes).tobytes()
    digest = hashlib.sha256()
    with atomic_write(path) as handle:
        for part in (header, body, b"\0" * _padding(len(body)), ids.tobytes()):
            handle.write(part)
            digest.update(part)
        handle.write(digest.digest())


def load_gallery(path: str | os.PathLike, *, bits: int | None = None, verify: bool = True) -> Gallery:
    """Memory-map and validate a gallery file; ``bits`` refuses another code length."""
    path = Path(path)
    if not path.is_file():
        raise GalleryError(f"gallery {str(path)!r} does not exist")
    size = path.stat().st_size
    if size < HEADER.size + CHECKSUM_BYTES:
        raise GalleryError(f"{str(path)!r} is too short ({size} bytes) to be a gallery: truncated or not a gallery")
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    magic, version, file_bits, count, row = HEADER.unpack_from(mapped, 0)
    if magic != MAGIC:
        raise GalleryError(f"{str(path)!r} is not a dagh gallery (bad magic {magic!r})")
    if version != FORMAT_VERSION:
        raise GalleryError(f"{str(path)!r} has gallery format version {version}; this dagh reads {FORMAT_VERSION}")
    if not 1 <= file_bits <= 4096 or row != packed_bytes(file_bits):
        raise GalleryError(f"{str(path)!r} has an inconsistent header ({file_bits} bits, {row} bytes per row)")
    if bits is not None and file_bits != bits:
        raise GalleryError(f"{str(path)!r} holds {file_bits}-bit codes but the model makes {bits}-bit codes; "
                           "rebuild the gallery with this model")
    codes_bytes = count * row
    expected = HEADER.size + codes_bytes + _padding(codes_bytes) + 8 * count + CHECKSUM_BYTES
    if size != expected:
        raise GalleryError(f"{str(path)!r} is {size} bytes but its header promises {expected} "
                           f"({count} codes): the file is truncated or has trailing data")
    if verify:
        body_end = size - CHECKSUM_BYTES
        if hashlib.sha256(memoryview(mapped)[:body_end]).digest() != mapped[body_end:]:
            raise GalleryError(f"{str(path)!r} fails its checksum: the file is corrupt; restore or rebuild it")
    codes = np.frombuffer(mapped, np.uint8, codes_bytes, HEADER.size).reshape(count, row)
    ids_offset = HEADER.size + codes_bytes + _padding(codes_bytes)
    ids = np.frombuffer(mapped, "<i8", count, ids_offset)
    return Gallery(int(file_bits), codes, ids, path)
