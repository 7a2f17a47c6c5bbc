"""Gallery files: packed codes and their ids on disk. No pickle: a validated binary format.

Layout, version 2 (little-endian):

    offset  size            field
    0       8               magic b"DAGHGAL1"
    8       4   uint32      format version (2)
    12      4   uint32      code bits
    16      8   uint64      count (codes in all committed segments)
    24      4   uint32      bytes per packed row (ceil(bits / 8))
    28      4   uint32      segments
    32      8   uint64      committed bytes (the file's valid length)
    40      16              reserved (zero)
    56      8               first 8 bytes of the sha256 of bytes 0..55
    64      segments, one after the other, each:
            8               segment magic b"DGSEGMNT"
            8   uint64      count
            count*row       packed codes (uint8 rows, dagh.runtime.bits order)
            0-7             zero padding to a multiple of 8
            count*8 int64   ids
            32              sha256 of the segment before it

``save_gallery`` writes a one-segment file to a temporary path, fsyncs and
renames it over the target, so a crash midway leaves the old gallery intact.
``append_gallery`` adds a segment without rewriting the file: it writes the
segment past the committed end and fsyncs it, then commits it by rewriting the
64-byte header (one sector, written in one piece). A crash before the commit
leaves bytes past the committed length, which loading ignores and the next
append overwrites: the gallery reads as it was. ``load_gallery`` memory-maps
the file and validates magic, version, header checksum, sizes, code length and
every segment's checksum before use. Version-1 files (one block, no segments)
still load; append to them after rewriting them with ``save_gallery``.
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
FORMAT_VERSION = 2
HEADER = struct.Struct("<8sIIQIIQ16x8s")
assert HEADER.size == 64
HEADER_DIGEST_AT = 56
SEGMENT = struct.Struct("<8sQ")
SEGMENT_MAGIC = b"DGSEGMNT"
CHECKSUM_BYTES = 32
_V1_HEADER = struct.Struct("<8sIIQI36x")  # version 1: header, codes, padding, ids, sha256 of all before


class GalleryError(DaghError):
    """A gallery file is truncated, corrupt, of another format or code length."""


@dataclasses.dataclass
class Gallery:
    """A loaded gallery: ``codes`` uint8 [n, ceil(bits/8)] and ``ids`` int64 [n].

    Memory-mapped when the file has one segment; a gallery that was appended to
    is gathered into memory.
    """

    bits: int
    codes: np.ndarray
    ids: np.ndarray
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def to_index(self, backend: str = "cpu"):
        from dagh.runtime.search.index import HammingIndex

        index = HammingIndex(self.bits, backend=backend)
        index.add(self.codes, self.ids)
        return index


def _padding(n: int) -> int:
    return (-n) % 8


def _header(bits: int, count: int, segments: int, committed: int) -> bytes:
    fields = HEADER.pack(MAGIC, FORMAT_VERSION, bits, count, packed_bytes(bits), segments, committed, b"")
    return fields[:HEADER_DIGEST_AT] + hashlib.sha256(fields[:HEADER_DIGEST_AT]).digest()[:8]


def _segment(codes: np.ndarray, ids: np.ndarray) -> bytes:
    body = np.ascontiguousarray(codes).tobytes()
    part = SEGMENT.pack(SEGMENT_MAGIC, len(ids)) + body + b"\0" * _padding(len(body)) + ids.tobytes()
    return part + hashlib.sha256(part).digest()


def _checked(codes: np.ndarray, ids: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    codes = check_packed(codes, bits)
    ids = np.ascontiguousarray(np.asarray(ids).reshape(-1), dtype="<i8")
    if len(ids) != len(codes):
        raise GalleryError(f"{len(codes)} codes but {len(ids)} ids")
    return codes, ids


def save_gallery(path: str | os.PathLike, codes: np.ndarray, ids: np.ndarray, bits: int) -> None:
    """Write packed ``codes`` and ``ids`` atomically to ``path`` (replacing any file there)."""
    codes, ids = _checked(codes, ids, bits)
    segment = _segment(codes, ids)
    with atomic_write(path) as handle:
        handle.write(_header(bits, len(ids), 1, HEADER.size + len(segment)))
        handle.write(segment)


def append_gallery(path: str | os.PathLike, codes: np.ndarray, ids: np.ndarray, bits: int) -> None:
    """Add ``codes`` and ``ids`` to the gallery at ``path`` without rewriting it (see the module docstring)."""
    codes, ids = _checked(codes, ids, bits)
    path = Path(path)
    _, count, segments, committed = _read_header(path, bits)
    segment = _segment(codes, ids)
    with open(path, "r+b") as handle:
        handle.truncate(committed)  # what an interrupted append left past the committed end
        handle.seek(committed)
        handle.write(segment)
        handle.flush()
        os.fsync(handle.fileno())
        # The commit: until this header is on disk, readers see the gallery as it was.
        handle.seek(0)
        handle.write(_header(bits, count + len(ids), segments + 1, committed + len(segment)))
        handle.flush()
        os.fsync(handle.fileno())


def _read_header(path: Path, bits: int | None) -> tuple[int, int, int, int]:
    """(bits, count, segments, committed bytes) of a version-2 file, validated; raises GalleryError."""
    if not path.is_file():
        raise GalleryError(f"gallery {str(path)!r} does not exist")
    with open(path, "rb") as handle:
        raw = handle.read(HEADER.size)
    version = _check_start(path, raw, bits)
    if version == 1:
        raise GalleryError(f"{str(path)!r} is a version-1 gallery, which cannot be appended to: load it and write "
                           "it again with save_gallery (version 2), then append")
    return _parse_v2_header(path, raw, path.stat().st_size)[:4]


def _check_start(path: Path, raw: bytes, bits: int | None) -> int:
    """Magic, version and code length, common to both versions; returns the version."""
    if len(raw) < HEADER.size:
        raise GalleryError(f"{str(path)!r} is too short ({len(raw)} bytes) to be a gallery: truncated or not a gallery")
    magic, version, file_bits = struct.unpack_from("<8sII", raw)
    if magic != MAGIC:
        raise GalleryError(f"{str(path)!r} is not a dagh gallery (bad magic {magic!r})")
    if version not in (1, FORMAT_VERSION):
        raise GalleryError(f"{str(path)!r} has gallery format version {version}; this dagh reads 1 and "
                           f"{FORMAT_VERSION}")
    if not 1 <= file_bits <= 4096:
        raise GalleryError(f"{str(path)!r} has an inconsistent header ({file_bits} bits)")
    if bits is not None and file_bits != bits:
        raise GalleryError(f"{str(path)!r} holds {file_bits}-bit codes but the model makes {bits}-bit codes; "
                           "rebuild the gallery with this model")
    return version


def _parse_v2_header(path: Path, raw: bytes, size: int) -> tuple[int, int, int, int, int]:
    _, _, file_bits, count, row, segments, committed, digest = HEADER.unpack_from(raw)
    if hashlib.sha256(raw[:HEADER_DIGEST_AT]).digest()[:8] != digest:
        raise GalleryError(f"{str(path)!r} fails its header checksum: the file is corrupt; restore or rebuild it")
    if row != packed_bytes(file_bits):
        raise GalleryError(f"{str(path)!r} has an inconsistent header ({file_bits} bits, {row} bytes per row)")
    if committed < HEADER.size or size < committed:
        raise GalleryError(f"{str(path)!r} is {size} bytes but its header commits {committed}: the file is truncated")
    return file_bits, count, segments, committed, row


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
    version = _check_start(path, mapped[:HEADER.size], bits)
    if version == 1:
        return _load_v1(path, mapped, size, verify)
    file_bits, count, segments, committed, row = _parse_v2_header(path, mapped[:HEADER.size], size)
    codes, ids, offset = [], [], HEADER.size
    for index in range(segments):
        if offset + SEGMENT.size + CHECKSUM_BYTES > committed:
            raise GalleryError(f"{str(path)!r}: segment {index} runs past the committed end: the file is corrupt")
        magic, n = SEGMENT.unpack_from(mapped, offset)
        codes_bytes = n * row
        end = offset + SEGMENT.size + codes_bytes + _padding(codes_bytes) + 8 * n + CHECKSUM_BYTES
        if end > committed:
            raise GalleryError(f"{str(path)!r}: segment {index} promises {n} codes, more than the file holds: "
                               "the file is corrupt or truncated")
        if verify and hashlib.sha256(memoryview(mapped)[offset:end - CHECKSUM_BYTES]).digest() != \
                mapped[end - CHECKSUM_BYTES:end]:
            raise GalleryError(f"{str(path)!r}: segment {index} fails its checksum: the file is corrupt; "
                               "restore or rebuild it")
        if magic != SEGMENT_MAGIC:
            raise GalleryError(f"{str(path)!r}: segment {index} has a bad magic {magic!r}: the file is corrupt")
        start = offset + SEGMENT.size
        codes.append(np.frombuffer(mapped, np.uint8, codes_bytes, start).reshape(n, row))
        ids.append(np.frombuffer(mapped, "<i8", n, start + codes_bytes + _padding(codes_bytes)))
        offset = end
    if offset != committed or sum(len(i) for i in ids) != count:
        raise GalleryError(f"{str(path)!r}: its segments hold {sum(len(i) for i in ids)} codes in {offset} bytes, "
                           f"its header says {count} in {committed}: the file is corrupt")
    if len(codes) == 1:
        return Gallery(int(file_bits), codes[0], ids[0], path)
    if not codes:
        return Gallery(int(file_bits), np.zeros((0, row), np.uint8), np.zeros(0, np.int64), path)
    return Gallery(int(file_bits), np.concatenate(codes), np.concatenate(ids), path)


def _load_v1(path: Path, mapped: mmap.mmap, size: int, verify: bool) -> Gallery:
    """Version 1: header, codes, padding, ids, one sha256 over everything before it."""
    _, _, file_bits, count, row = _V1_HEADER.unpack_from(mapped, 0)
    if row != packed_bytes(file_bits):
        raise GalleryError(f"{str(path)!r} has an inconsistent header ({file_bits} bits, {row} bytes per row)")
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
    ids = np.frombuffer(mapped, "<i8", count, HEADER.size + codes_bytes + _padding(codes_bytes))
    return Gallery(int(file_bits), codes, ids, path)
