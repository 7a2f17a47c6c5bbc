"""HammingIndex: exact k-nearest and radius search over packed binary codes.

    index = HammingIndex(bits=48)              # backend="cpu" (numba), "numpy", "gpu", "faiss"
    index.add(packed_codes, ids)               # uint8 rows [n, ceil(bits/8)] (or +1/-1 codes)
    distances, ids = index.search(queries, k)  # [nq, k]; ties broken by insertion order
    hits = index.range_search(queries, radius) # per query: (distances, ids)

Results are exact and deterministic: ordered by (distance, insertion order).
Where k exceeds the gallery, the rows are padded with distance -1 and id -1.

Memory (CPU backend): the word-major codes, plus for codes of up to 255 bits a
bit-sliced copy of about the same size (dagh.runtime.search.kernels.bitsliced), plus, once
that copy outgrows a core's L2 cache, a second one laid out in pages for
one-query searches (dagh.runtime.search.kernels.pages): 16 + 17.25 + 17.25 bytes a 128-bit
code.

Thread safety: concurrent ``search`` calls are safe, and ``add``/``remove`` may
run while searches are in flight: writers never modify what a search already
holds (appends go past the snapshot a search took, and where they share a
word of a bit-sliced copy with older codes they write those codes' bits
unchanged; ``remove`` builds new arrays), so a search sees the gallery as it
was when it started. A writer publishes each new state by one reference
assignment, so searches take no lock to read it. The parallel scans
themselves run one at a time, each using all cores.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from dagh.errors import ConfigError, DataError
from dagh.runtime.bits import (
    from_words,
    lane_dtype,
    lanes_of_checked,
    pack_codes,
    packed_bytes,
    words_per_code,
)
from dagh.runtime.search.backend import Backend

BACKENDS = ("cpu", "numpy", "gpu", "faiss")


@dataclass(frozen=True)
class _Snapshot:
    """The gallery as a search sees it: the first ``n`` codes of the storage at that moment."""

    columns: np.ndarray  # [words, capacity] of lane_dtype(bits), word-major; codes past n are not part of it
    n: int
    ids: np.ndarray      # int64 [n]
    mirror: object = None  # the backend's own copy (Backend.mirror): the CPU backend's bit-sliced copies

    @property
    def rows(self) -> np.ndarray:
        """[n, words] (a view): code i is row i."""
        return self.columns[:, :self.n].T


class HammingIndex:
    """Exact Hamming search over a gallery of binary codes (see module docstring)."""

    def __init__(self, bits: int, backend: str = "cpu"):
        if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 4096:
            raise ConfigError(f"bits must be an integer in 1..4096, got {bits!r}")
        if backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.bits = int(bits)
        self.backend_name = backend
        self._words_per_code = words_per_code(self.bits)
        self._packed_bytes = packed_bytes(self.bits)
        # Word-major storage (word w of code i at [w, i]): each word of consecutive
        # codes is one contiguous run, which is what the vectorized scan reads.
        self._dtype = lane_dtype(self.bits)
        self._columns = np.zeros((self._words_per_code, 0), self._dtype)
        self._ids = np.zeros(0, np.int64)
        self._size = 0
        self._write_lock = threading.Lock()
        self._backend = make_backend(backend, self.bits)
        self._mirror = None
        self._generation = 0
        self._published = _Snapshot(self._columns, 0, self._ids)

    # -- gallery ---------------------------------------------------------------
    def __len__(self) -> int:
        return self._size

    def _to_packed(self, codes: np.ndarray, name: str) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim == 1:
            codes = codes[None]
        if codes.dtype == np.uint8 and codes.ndim == 2 and codes.shape[1] == self._packed_bytes != self.bits:
            return codes  # packed rows (everything check_packed would check): the common case, ~0.3 us
        if codes.ndim == 2 and codes.shape[1] == self.bits:
            return pack_codes(codes)
        raise DataError(f"{name} must be packed uint8 rows [n, {self._packed_bytes}] or +1/-1 codes "
                        f"[n, {self.bits}] for this {self.bits}-bit index, got {codes.dtype} {codes.shape}")

    def _words(self, codes: np.ndarray, name: str) -> np.ndarray:
        """Codes -> [n, words] in the storage lane type."""
        return lanes_of_checked(self._to_packed(codes, name), self.bits)

    def add(self, codes: np.ndarray, ids: np.ndarray | None = None) -> None:
        """Append codes; ``ids`` default to consecutive integers after the current size."""
        words = self._words(codes, "codes")
        n_new = len(words)
        with self._write_lock:
            if ids is None:
                ids = np.arange(self._size, self._size + n_new, dtype=np.int64)
            ids = np.asarray(ids).reshape(-1)
            if len(ids) != n_new:
                raise DataError(f"{n_new} codes but {len(ids)} ids")
            if not np.issubdtype(ids.dtype, np.integer):
                raise DataError(f"ids must be integers, got {ids.dtype}")
            end = self._size + n_new
            if end > self._columns.shape[1]:  # grow geometrically; old snapshots keep the old arrays
                capacity = max(end, 2 * self._columns.shape[1], 1024)
                grown_columns = np.zeros((self._words_per_code, capacity), self._dtype)
                grown_ids = np.full(capacity, -1, np.int64)
                grown_columns[:, :self._size] = self._columns[:, :self._size]
                grown_ids[:self._size] = self._ids[:self._size]
                self._columns, self._ids = grown_columns, grown_ids
            # Codes past the current size are invisible to in-flight searches.
            self._columns[:, self._size:end] = words.T
            self._ids[self._size:end] = ids
            self._mirror = self._backend.mirror(self._columns, self._mirror, self._size, end)
            self._size = end
            self._publish()

    def remove(self, ids: np.ndarray) -> int:
        """Remove every code whose id is in ``ids``; returns how many were removed."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):  # 1.5 must not quietly remove id 1
            raise DataError(f"ids must be integers, got {ids.dtype}")
        ids = ids.astype(np.int64)
        with self._write_lock:
            keep = ~np.isin(self._ids[:self._size], ids)
            removed = int(self._size - keep.sum())
            if removed:
                # New arrays: a search in flight keeps reading the old ones.
                self._columns = np.ascontiguousarray(self._columns[:, :self._size][:, keep])
                self._ids = np.ascontiguousarray(self._ids[:self._size][keep])
                self._size = len(self._ids)
                self._mirror = self._backend.mirror(self._columns, None, 0, self._size)
                self._publish()
            return removed

    @property
    def scanned_bytes_per_code(self) -> float:
        """Bytes of gallery a k-nearest search reads per code (for GB/s figures): the backend's layout."""
        return self._backend.scanned_bytes_per_code(self.bits)

    @property
    def one_query_bytes_per_code(self) -> float:
        """Bytes per code a one-query search reads at most (less than the layout where it reads a page copy)."""
        return self._backend.one_query_bytes_per_code(self.bits, len(self))

    @property
    def backend(self):
        """The backend object, for diagnostics (the GPU's ``last_scan_seconds``, say)."""
        return self._backend

    @property
    def ids(self) -> np.ndarray:
        return self._snapshot().ids.copy()

    def packed_codes(self) -> np.ndarray:
        """The gallery as packed uint8 rows, in insertion order."""
        return from_words(self._snapshot().rows.astype(np.uint64), self.bits)

    def _publish(self) -> None:
        """Make the gallery as it now stands what new searches see (called with the write lock held)."""
        # One reference assignment: a search reads a consistent snapshot without taking the lock.
        self._published = _Snapshot(self._columns, self._size, self._ids[:self._size], self._mirror)
        self._generation += 1

    @property
    def generation(self) -> int:
        """How many times the gallery has changed. A search sees the gallery of a generation between the
        values read just before and just after it (the same one where nothing changed meanwhile)."""
        return self._generation

    def _snapshot(self) -> _Snapshot:
        return self._published

    # -- search ----------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest codes of each query: (distances int32 [nq, k], ids int64 [nq, k])."""
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        packed = self._to_packed(queries, "queries")
        snap = self._snapshot()
        if not snap.n or not len(packed):
            return np.full((len(packed), int(k)), -1, np.int32), np.full((len(packed), int(k)), -1, np.int64)
        return self._backend.search(snap, packed, int(k))

    def range_search(self, queries: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every code within ``radius`` of each query, ordered by (distance, insertion)."""
        if not isinstance(radius, (int, np.integer)) or radius < 0:
            raise ConfigError(f"radius must be a non-negative integer, got {radius!r}")
        q = self._words(queries, "queries")
        snap = self._snapshot()
        if not len(snap.ids):
            return [(np.zeros(0, np.int32), np.zeros(0, np.int64)) for _ in range(len(q))]
        d, pos, counts = self._backend.within(snap, q, int(radius))
        return [(d[g, :counts[g]].astype(np.int32), snap.ids[pos[g, :counts[g]]]) for g in range(len(q))]


def make_backend(name: str, bits: int) -> Backend:
    """The backend called ``name`` (one of BACKENDS) for ``bits``-bit codes; its module loads here."""
    if name == "cpu":
        from dagh.runtime.search.cpu import CpuBackend

        return CpuBackend(bits)
    if name == "numpy":
        from dagh.runtime.search.reference import NumpyBackend

        return NumpyBackend(bits)
    if name == "faiss":
        from dagh.runtime.search.reference import FaissBackend

        return FaissBackend(bits)
    from dagh.runtime.search.gpu import GpuBackend

    return GpuBackend(bits)
