"""Gallery files: packed codes, their ids and their people's names on disk; no pickle, a validated format.

Layout (little-endian). The 64-byte header, versions 2 and 3:

    offset  size            field
    0       8               magic b"DAGHGAL1"
    8       4   uint32      format version (3: codes with labels; 2: codes without)
    12      4   uint32      code bits
    16      8   uint64      count (codes in all committed segments)
    24      4   uint32      bytes per packed row (ceil(bits / 8))
    28      4   uint32      segments
    32      8   uint64      committed bytes (the file's valid length)
    40      16              reserved (zero)
    56      8               first 8 bytes of the sha256 of bytes 0..55
    64      segments, one after the other

A version-3 segment of n codes and L label bytes (each part starts at a multiple of 8):

    size            field
    8               segment magic b"DGSEGLBL"
    8   uint64      n
    8   uint64      L
    n*row           packed codes (uint8 rows, dagh.runtime.bits order)
    0-7             zero padding to a multiple of 8
    n*8 int64       ids
    (n+1)*4 uint32  label offsets o: o[0] = 0, 1 <= o[i+1] - o[i] <= 256, o[n] = L
    0-7             zero padding
    L               the labels, UTF-8, one after the other: label i is bytes o[i]..o[i+1]
    0-7             zero padding
    32              sha256 of the segment before it

A version-2 segment is magic b"DGSEGMNT", uint64 n, codes, padding, ids, sha256: no labels.

Labels are the people's names, one per code; several codes may share one. A
label is 1..256 bytes of UTF-8 after NFC normalization (stored normalized),
with no control characters (NUL, tab, newline, U+007F..U+009F, U+2028/9) and
no leading or trailing whitespace. Ids are unique within a file, so an id
names one code: ``save_gallery`` and ``append_gallery`` refuse repeats (older
files that repeat ids still load). Loading a version-3 file checks every
label's offsets, UTF-8 and characters, and that its ids are unique.

Versions: ``save_gallery`` writes version 3 when given labels and version 2
(the earlier format, byte for byte) when not, so a file has labels exactly
when it is version 3; ``Gallery.labels`` is None for version 1 and 2 files.
``append_gallery`` keeps a file's version: it requires labels for a version-3
file and refuses them for a version-2 one (name its codes by writing it again
with ``save_gallery(..., labels=...)``).

``save_gallery`` and ``remove_from_gallery`` write the whole file to a
temporary path, fsync it and rename it over the target, so a crash midway
leaves the old gallery intact. ``append_gallery`` adds a segment without
rewriting the file: it writes the segment past the committed end and fsyncs
it, then commits it by rewriting the 64-byte header (one sector, written in
one piece). A crash before the commit leaves bytes past the committed length,
which loading ignores and the next append overwrites: the gallery reads as it
was. ``load_gallery`` memory-maps the file and validates magic, version,
header checksum, sizes, code length and every segment's checksum before use.
Version-1 files (one block, no segments) still load; append to them after
rewriting them with ``save_gallery``. One writer at a time: nothing locks the file.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import mmap
import os
import re
import struct
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from dagh.errors import DaghError
from dagh.fileio import atomic_write
from dagh.runtime.bits import check_packed, packed_bytes

MAGIC = b"DAGHGAL1"
FORMAT_VERSION = 3  # the newest; a gallery without labels is written as version 2
UNLABELLED_VERSION = 2
HEADER = struct.Struct("<8sIIQIIQ16x8s")
assert HEADER.size == 64
HEADER_DIGEST_AT = 56
SEGMENT = struct.Struct("<8sQ")  # version 2: magic, count
SEGMENT_MAGIC = b"DGSEGMNT"
LABELLED_SEGMENT = struct.Struct("<8sQQ")  # version 3: magic, count, label bytes
LABELLED_SEGMENT_MAGIC = b"DGSEGLBL"
CHECKSUM_BYTES = 32
MAX_LABEL_BYTES = 256
_V1_HEADER = struct.Struct("<8sIIQI36x")  # version 1: header, codes, padding, ids, sha256 of all before
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # C0, DEL, C1, line/paragraph separators


class GalleryError(DaghError):
    """A gallery file is truncated, corrupt, of another format or code length, or was given bad data."""


@dataclasses.dataclass
class Gallery:
    """A loaded gallery: ``codes`` uint8 [n, ceil(bits/8)], ``ids`` int64 [n], ``labels`` n str or None.

    ``labels`` is None for a file without names (format version 1 or 2).
    Memory-mapped when the file has one segment; a gallery that was appended
    to is gathered into memory.
    """

    bits: int
    codes: np.ndarray
    ids: np.ndarray
    path: Path | None = None
    labels: list[str] | None = None
    _rows: dict[int, int] | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def to_index(self, backend: str = "cpu"):
        """A HammingIndex over the codes; its searches return the codes' ids (``labels_of`` names them)."""
        from dagh.runtime.search.index import HammingIndex

        index = HammingIndex(self.bits, backend=backend)
        index.add(self.codes, self.ids)
        return index

    def people(self) -> dict[str, int]:
        """Each label -> its number of codes, in order of first appearance."""
        return dict(collections.Counter(self._named("people")))

    def label_of(self, id: int) -> str:
        """The label of the code with id ``id``; raises GalleryError for an id not in the gallery."""
        labels = self._named("label_of")
        row = self._row_map().get(int(id))
        if row is None:
            raise GalleryError(f"id {int(id)} is not in the gallery{self._where()}")
        return labels[row]

    def labels_of(self, ids: np.ndarray) -> np.ndarray:
        """Labels of ids (e.g. a search's ``I`` [nq, k]): an object array of that shape, None where -1."""
        labels = self._named("labels_of")
        rows = self._row_map()
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty(ids.shape, dtype=object)
        for at, value in np.ndenumerate(ids):
            if value == -1:
                continue
            row = rows.get(int(value))
            if row is None:
                raise GalleryError(f"id {int(value)} is not in the gallery{self._where()}")
            out[at] = labels[row]
        return out

    def _named(self, what: str) -> list[str]:
        if self.labels is None:
            raise GalleryError(f"the gallery{self._where()} has no labels (a format version 1 or 2 file), so "
                               f"{what} has no names to give: write it again with "
                               "save_gallery(..., labels=...)")
        return self.labels

    def _row_map(self) -> dict[int, int]:
        if self._rows is None:
            self._rows = {int(i): row for row, i in enumerate(self.ids.tolist())}
        return self._rows

    def _where(self) -> str:
        return f" {str(self.path)!r}" if self.path is not None else ""


def _padding(n: int) -> int:
    return (-n) % 8


def _header(bits: int, count: int, segments: int, committed: int, version: int) -> bytes:
    fields = HEADER.pack(MAGIC, version, bits, count, packed_bytes(bits), segments, committed, b"")
    return fields[:HEADER_DIGEST_AT] + hashlib.sha256(fields[:HEADER_DIGEST_AT]).digest()[:8]


@dataclasses.dataclass(frozen=True)
class _Labels:
    """Labels encoded for a segment: ``offsets`` uint32 [n + 1] into ``blob`` (UTF-8)."""

    offsets: np.ndarray
    blob: bytes


def _segment(codes: np.ndarray, ids: np.ndarray, labels: _Labels | None) -> bytes:
    body = np.ascontiguousarray(codes).tobytes()
    if labels is None:
        start = SEGMENT.pack(SEGMENT_MAGIC, len(ids))
    else:
        start = LABELLED_SEGMENT.pack(LABELLED_SEGMENT_MAGIC, len(ids), len(labels.blob))
    parts = [start, body, b"\0" * _padding(len(body)), ids.tobytes()]
    if labels is not None:
        offsets = labels.offsets.tobytes()
        parts += [offsets, b"\0" * _padding(len(offsets)), labels.blob, b"\0" * _padding(len(labels.blob))]
    part = b"".join(parts)
    return part + hashlib.sha256(part).digest()


def _checked(codes: np.ndarray, ids: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    codes = check_packed(codes, bits)
    ids = np.ascontiguousarray(np.asarray(ids).reshape(-1), dtype="<i8")
    if len(ids) != len(codes):
        raise GalleryError(f"{len(codes)} codes but {len(ids)} ids")
    return codes, ids


def _check_unique(ids: np.ndarray, existing: np.ndarray | None = None) -> None:
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        repeated = values[counts > 1]
        raise GalleryError(f"ids must be unique within a gallery (an id names one code), but {len(repeated)} "
                           f"repeat, e.g. {repeated[:5].tolist()}: give each code its own id and put the "
                           "person's name in labels= (several codes may share a label)")
    if existing is not None and len(existing):
        taken = values[np.isin(values, existing)]
        if len(taken):
            raise GalleryError(f"{len(taken)} of the ids are already in the gallery, e.g. "
                               f"{taken[:5].tolist()}: give the new codes ids the gallery does not hold "
                               "(ids are unique, one per code)")


def _label(value: object, i: int) -> bytes:
    """Label ``i``, validated and NFC-normalized, as UTF-8 bytes."""
    if not isinstance(value, str):
        raise GalleryError(f"label {i} is {type(value).__name__} {value!r}, not a str: labels are the "
                           "people's names, one str per code")
    label = unicodedata.normalize("NFC", value)
    if not label:
        raise GalleryError(f"label {i} is empty: give every code its person's name")
    control = _CONTROL.search(label)
    if control:
        raise GalleryError(f"label {i} {label!r} holds the control character {control.group()!r} "
                           "(NUL, tab, newline ... are not allowed in a name): remove it")
    if label != label.strip():
        raise GalleryError(f"label {i} {label!r} starts or ends with whitespace: strip it")
    try:
        raw = label.encode("utf-8")
    except UnicodeEncodeError:
        raise GalleryError(f"label {i} {label!r} cannot be written as UTF-8 (it holds a lone surrogate): "
                           "decode the name properly before passing it") from None
    if len(raw) > MAX_LABEL_BYTES:
        raise GalleryError(f"label {i} {label[:40]!r}... is {len(raw)} bytes of UTF-8, more than "
                           f"{MAX_LABEL_BYTES}: shorten it")
    return raw


def _encoded(labels: Sequence[str], count: int) -> _Labels:
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise GalleryError(f"labels must be a list of str, one per code, got {type(labels).__name__}")
    raw = [_label(value, i) for i, value in enumerate(labels)]
    if len(raw) != count:
        raise GalleryError(f"{count} codes but {len(raw)} labels: give one label per code")
    return _pack(raw)


def _pack(raw: list[bytes]) -> _Labels:
    """Offsets and blob of UTF-8 labels."""
    count = len(raw)
    offsets = np.zeros(count + 1, np.int64)
    np.cumsum([len(r) for r in raw], out=offsets[1:])
    if offsets[-1] >= 2**32:
        raise GalleryError(f"the labels take {int(offsets[-1])} bytes, more than one segment holds (4 GiB): "
                           "save part of the codes and append the rest in smaller parts")
    return _Labels(offsets.astype("<u4"), b"".join(raw))


def _write(path: str | os.PathLike, codes: np.ndarray, ids: np.ndarray, bits: int,
           labels: _Labels | None) -> None:
    """One-segment file, written atomically: version 3 with labels, 2 without."""
    segment = _segment(codes, ids, labels)
    version = UNLABELLED_VERSION if labels is None else FORMAT_VERSION
    with atomic_write(path) as handle:
        handle.write(_header(bits, len(ids), 1, HEADER.size + len(segment), version))
        handle.write(segment)


def save_gallery(path: str | os.PathLike, codes: np.ndarray, ids: np.ndarray, bits: int, *,
                 labels: Sequence[str] | None = None) -> None:
    """Write packed ``codes`` and unique int64 ``ids`` atomically to ``path`` (replacing any file there).

    ``labels``: the person's name of each code (see the module docstring).
    Defaults to None: a version-2 file without names.
    """
    codes, ids = _checked(codes, ids, bits)
    encoded = None if labels is None else _encoded(labels, len(ids))
    _check_unique(ids)
    _write(path, codes, ids, bits, encoded)


def append_gallery(path: str | os.PathLike, codes: np.ndarray, ids: np.ndarray, bits: int, *,
                   labels: Sequence[str] | None = None) -> None:
    """Add ``codes`` and ``ids`` to the gallery at ``path`` without rewriting it (see the module docstring).

    ``labels`` is required when the file has labels and refused when it has
    none. The file is read and verified first: the new ids must not be in it.
    """
    codes, ids = _checked(codes, ids, bits)
    path = Path(path)
    gallery, version, segments, committed = _load(path, bits, verify=True)
    where = str(path)
    if version == 1:
        raise GalleryError(f"{where!r} is a version-1 gallery, which cannot be appended to: load it and "
                           "write it again with save_gallery (version 2, or 3 with labels=), then append")
    if version == FORMAT_VERSION and labels is None:
        raise GalleryError(f"{where!r} names its codes (it has labels): pass labels=, one name per new code")
    if version == UNLABELLED_VERSION and labels is not None:
        raise GalleryError(f"{where!r} has no labels (format version 2), so new codes cannot bring labels: "
                           "append without labels=, or upgrade it first by writing it again with names, "
                           "g = load_gallery(path); save_gallery(path, g.codes, g.ids, g.bits, labels=[...])")
    encoded = None if labels is None else _encoded(labels, len(ids))
    _check_unique(ids, gallery.ids)
    segment = _segment(codes, ids, encoded)
    count = len(gallery)
    del gallery  # its arrays may map the file
    with open(path, "r+b") as handle:
        handle.truncate(committed)  # what an interrupted append left past the committed end
        handle.seek(committed)
        handle.write(segment)
        handle.flush()
        os.fsync(handle.fileno())
        # The commit: until this header is on disk, readers see the gallery as it was.
        handle.seek(0)
        handle.write(_header(bits, count + len(ids), segments + 1, committed + len(segment), version))
        handle.flush()
        os.fsync(handle.fileno())


def remove_from_gallery(path: str | os.PathLike, *, ids: int | Iterable[int] | None = None,
                        labels: str | Iterable[str] | None = None) -> int:
    """Remove the codes whose id is in ``ids`` or whose label is in ``labels``; returns how many were removed.

    A single id or label counts as a list of one; ids and labels the gallery
    does not hold remove nothing (check the count). The file is written again
    atomically (temporary file, fsync, rename), so a crash midway leaves the
    old one intact; nothing is written when nothing matches. A version-1 file
    comes out as version 2.
    """
    if ids is None and labels is None:
        raise GalleryError("remove_from_gallery needs ids= or labels= (or both): which codes to remove")
    path = Path(path)
    gallery, version, _, _ = _load(path, None, verify=True)
    drop = np.zeros(len(gallery), bool)
    if ids is not None:
        drop |= np.isin(gallery.ids, _as_ids(ids))
    if labels is not None:
        if gallery.labels is None:
            raise GalleryError(f"{str(path)!r} has no labels (format version {version}): remove its codes "
                               "by ids=")
        names = _as_names(labels)
        drop |= np.fromiter((label in names for label in gallery.labels), bool, len(gallery))
    removed = int(drop.sum())
    if removed:
        keep = ~drop
        encoded = None
        if gallery.labels is not None:
            encoded = _pack([label.encode("utf-8") for label, kept in zip(gallery.labels, keep) if kept])
        _write(path, gallery.codes[keep], gallery.ids[keep], gallery.bits, encoded)
    return removed


def _as_ids(ids: int | Iterable[int]) -> np.ndarray:
    values = np.asarray(list(ids) if isinstance(ids, Iterable) and not isinstance(ids, np.ndarray) else ids)
    values = values.reshape(-1)
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise GalleryError(f"ids must be integers, got {values.dtype} values such as {values[:3].tolist()}")
    return values.astype(np.int64)


def _as_names(labels: str | Iterable[str]) -> set[str]:
    values = [labels] if isinstance(labels, str) else list(labels)
    for value in values:
        if not isinstance(value, str):
            raise GalleryError(f"labels must be str (the people's names), got {type(value).__name__} "
                               f"{value!r}")
    return {unicodedata.normalize("NFC", value) for value in values}


def load_gallery(path: str | os.PathLike, *, bits: int | None = None, verify: bool = True) -> Gallery:
    """Memory-map and validate a gallery file; ``bits`` refuses another code length.

    ``verify`` checks the segments' sha256 (defaults to True); labels, sizes
    and offsets are checked either way.
    """
    return _load(Path(path), bits, verify)[0]


def _load(path: Path, bits: int | None, verify: bool) -> tuple[Gallery, int, int, int]:
    """(gallery, format version, segments, committed bytes), validated; raises GalleryError."""
    if not path.is_file():
        raise GalleryError(f"gallery {str(path)!r} does not exist")
    size = path.stat().st_size
    if size < HEADER.size + CHECKSUM_BYTES:
        raise GalleryError(f"{str(path)!r} is too short ({size} bytes) to be a gallery: truncated or not a "
                           "gallery")
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    version = _check_start(path, mapped[:HEADER.size], bits)
    if version == 1:
        return _load_v1(path, mapped, size, verify), 1, 1, size
    file_bits, count, segments, committed, row = _parse_header(path, mapped[:HEADER.size], size)
    labelled = version == FORMAT_VERSION
    codes, ids, labels, offset = [], [], [], HEADER.size
    for index in range(segments):
        segment_codes, segment_ids, segment_labels, offset = _read_segment(
            path, mapped, offset, committed, index, row, labelled, verify)
        codes.append(segment_codes)
        ids.append(segment_ids)
        labels.extend(segment_labels)
    if offset != committed or sum(len(i) for i in ids) != count:
        raise GalleryError(f"{str(path)!r}: its segments hold {sum(len(i) for i in ids)} codes in {offset} "
                           f"bytes, its header says {count} in {committed}: the file is corrupt")
    if len(codes) == 1:
        all_codes, all_ids = codes[0], ids[0]
    elif not codes:
        all_codes, all_ids = np.zeros((0, row), np.uint8), np.zeros(0, np.int64)
    else:
        all_codes, all_ids = np.concatenate(codes), np.concatenate(ids)
    if labelled and len(np.unique(all_ids)) != len(all_ids):
        raise GalleryError(f"{str(path)!r} repeats ids, which a gallery with labels never does: the file is "
                           "corrupt; restore or rebuild it")
    gallery = Gallery(int(file_bits), all_codes, all_ids, path, labels if labelled else None)
    return gallery, version, segments, committed


def _check_start(path: Path, raw: bytes, bits: int | None) -> int:
    """Magic, version and code length, common to all versions; returns the version."""
    if len(raw) < HEADER.size:
        raise GalleryError(f"{str(path)!r} is too short ({len(raw)} bytes) to be a gallery: truncated or "
                           "not a gallery")
    magic, version, file_bits = struct.unpack_from("<8sII", raw)
    if magic != MAGIC:
        raise GalleryError(f"{str(path)!r} is not a dagh gallery (bad magic {magic!r})")
    if version not in (1, UNLABELLED_VERSION, FORMAT_VERSION):
        raise GalleryError(f"{str(path)!r} has gallery format version {version}; this dagh reads versions "
                           f"1 to {FORMAT_VERSION}: upgrade dagh")
    if not 1 <= file_bits <= 4096:
        raise GalleryError(f"{str(path)!r} has an inconsistent header ({file_bits} bits)")
    if bits is not None and file_bits != bits:
        raise GalleryError(f"{str(path)!r} holds {file_bits}-bit codes but the model makes {bits}-bit codes; "
                           "rebuild the gallery with this model")
    return version


def _parse_header(path: Path, raw: bytes, size: int) -> tuple[int, int, int, int, int]:
    """(bits, count, segments, committed, row) of a version-2 or -3 header."""
    _, _, file_bits, count, row, segments, committed, digest = HEADER.unpack_from(raw)
    if hashlib.sha256(raw[:HEADER_DIGEST_AT]).digest()[:8] != digest:
        raise GalleryError(f"{str(path)!r} fails its header checksum: the file is corrupt; restore or "
                           "rebuild it")
    if row != packed_bytes(file_bits):
        raise GalleryError(f"{str(path)!r} has an inconsistent header ({file_bits} bits, {row} bytes per "
                           "row)")
    if committed < HEADER.size or size < committed:
        raise GalleryError(f"{str(path)!r} is {size} bytes but its header commits {committed}: the file is "
                           "truncated")
    return file_bits, count, segments, committed, row


def _read_segment(path: Path, mapped: mmap.mmap, offset: int, committed: int, index: int, row: int,
                  labelled: bool, verify: bool) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Segment ``index`` at ``offset``: (codes, ids, labels, the offset after it)."""
    where = f"{str(path)!r}: segment {index}"
    start = LABELLED_SEGMENT if labelled else SEGMENT
    if offset + start.size + CHECKSUM_BYTES > committed:
        raise GalleryError(f"{where} runs past the committed end: the file is corrupt")
    fields = start.unpack_from(mapped, offset)
    magic, n, label_bytes = fields[0], fields[1], fields[2] if labelled else 0
    codes_bytes = n * row
    ids_at = offset + start.size + codes_bytes + _padding(codes_bytes)
    labels_at = ids_at + 8 * n
    blob_at = labels_at + 4 * (n + 1) + _padding(4 * (n + 1))
    end = (blob_at + label_bytes + _padding(label_bytes) if labelled else labels_at) + CHECKSUM_BYTES
    if end > committed:
        raise GalleryError(f"{where} promises {n} codes, more than the file holds: the file is corrupt or "
                           "truncated")
    if verify and hashlib.sha256(memoryview(mapped)[offset:end - CHECKSUM_BYTES]).digest() != \
            mapped[end - CHECKSUM_BYTES:end]:
        raise GalleryError(f"{where} fails its checksum: the file is corrupt; restore or rebuild it")
    if magic != (LABELLED_SEGMENT_MAGIC if labelled else SEGMENT_MAGIC):
        raise GalleryError(f"{where} has a bad magic {magic!r}: the file is corrupt")
    codes = np.frombuffer(mapped, np.uint8, codes_bytes, offset + start.size).reshape(n, row)
    ids = np.frombuffer(mapped, "<i8", n, ids_at)
    labels = []
    if labelled:
        offsets = np.frombuffer(mapped, "<u4", n + 1, labels_at).astype(np.int64)
        labels = _read_labels(where, offsets, mapped[blob_at:blob_at + label_bytes])
    return codes, ids, labels, end


def _read_labels(where: str, offsets: np.ndarray, blob: bytes) -> list[str]:
    """Check a segment's label offsets and bytes and decode them; raises GalleryError."""
    lengths = np.diff(offsets)
    wrong = np.flatnonzero((lengths < 1) | (lengths > MAX_LABEL_BYTES))
    if offsets[0] != 0 or offsets[-1] != len(blob) or len(wrong):
        detail = f"label {int(wrong[0])} spans {int(lengths[wrong[0]])} bytes" if len(wrong) else \
            f"they run {int(offsets[0])}..{int(offsets[-1])} over {len(blob)} label bytes"
        raise GalleryError(f"{where} has label offsets out of range ({detail}): the file is corrupt; "
                           "restore or rebuild it")
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GalleryError(f"{where} has labels that are not valid UTF-8 (at label byte {exc.start}): "
                           "the file is corrupt; restore or rebuild it") from None
    starts = np.frombuffer(blob, np.uint8)
    inside = np.flatnonzero((starts[offsets[:-1]] & 0xC0) == 0x80) if len(lengths) else []
    if len(inside):
        raise GalleryError(f"{where}: label {int(inside[0])} starts inside a UTF-8 character: the file is "
                           "corrupt; restore or rebuild it")
    control = _CONTROL.search(text)
    if control:
        raise GalleryError(f"{where} has a label holding the control character {control.group()!r}: the file "
                           "is corrupt; restore or rebuild it")
    chars = np.zeros(len(blob) + 1, np.int64)  # character index of each byte offset
    np.cumsum((starts & 0xC0) != 0x80, out=chars[1:])
    at = chars[offsets].tolist()
    return [text[a:b] for a, b in zip(at[:-1], at[1:])]


def _load_v1(path: Path, mapped: mmap.mmap, size: int, verify: bool) -> Gallery:
    """Version 1: header, codes, padding, ids, one sha256 over everything before it."""
    _, _, file_bits, count, row = _V1_HEADER.unpack_from(mapped, 0)
    if row != packed_bytes(file_bits):
        raise GalleryError(f"{str(path)!r} has an inconsistent header ({file_bits} bits, {row} bytes per "
                           "row)")
    codes_bytes = count * row
    expected = HEADER.size + codes_bytes + _padding(codes_bytes) + 8 * count + CHECKSUM_BYTES
    if size != expected:
        raise GalleryError(f"{str(path)!r} is {size} bytes but its header promises {expected} "
                           f"({count} codes): the file is truncated or has trailing data")
    if verify:
        body_end = size - CHECKSUM_BYTES
        if hashlib.sha256(memoryview(mapped)[:body_end]).digest() != mapped[body_end:]:
            raise GalleryError(f"{str(path)!r} fails its checksum: the file is corrupt; restore or "
                               "rebuild it")
    codes = np.frombuffer(mapped, np.uint8, codes_bytes, HEADER.size).reshape(count, row)
    ids = np.frombuffer(mapped, "<i8", count, HEADER.size + codes_bytes + _padding(codes_bytes))
    return Gallery(int(file_bits), codes, ids, path)
