"""HammingIndex: exact k-nearest and radius search over packed binary codes.

    index = HammingIndex(bits=48)              # backend="cpu" (numba), "numpy", "gpu", "faiss"
    index.add(packed_codes, ids)               # uint8 rows [n, ceil(bits/8)] (or +1/-1 codes)
    distances, ids = index.search(queries, k)  # [nq, k]; ties broken by insertion order
    hits = index.range_search(queries, radius) # per query: (distances, ids)

Results are exact and deterministic: ordered by (distance, insertion order).
Where k exceeds the gallery, the rows are padded with distance -1 and id -1.

Memory (CPU backend): the word-major codes, plus for codes of up to 255 bits a
bit-sliced copy of about the same size (dagh.runtime._bitsliced), plus, once
that copy outgrows a core's L2 cache, a second one laid out in pages for
one-query searches (dagh.runtime._pages): 16 + 17.25 + 17.25 bytes a 128-bit
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

from dagh._optional import require
from dagh.errors import ConfigError, DataError
from dagh.runtime.bits import (
    from_words,
    lane_dtype,
    lanes_of_checked,
    pack_codes,
    packed_bytes,
    words_per_code,
)

BACKENDS = ("cpu", "numpy", "gpu", "faiss")
QUERY_GROUP = 128        # queries per pass over the gallery: each L1 tile serves them all (16 -> 128: 1.4x at 1M)
RANGE_GROUP = 16         # queries per range-search pass: it keeps a distance byte per code and query
MIN_CHUNK = 8192         # gallery codes per parallel task, at least


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
        self._backend = _make_backend(backend, self.bits)
        self._mirror = None
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
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
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


# -- backends -------------------------------------------------------------------
class Backend:
    """What HammingIndex asks of a backend: ``search``, ``within``, and optionally a copy of the gallery.

    ``search(snapshot, packed, k)`` gets the queries as checked packed rows
    (``lanes_of_checked`` makes them lanes); ``within(snapshot, queries,
    radius)`` gets them as lanes.
    """

    def mirror(self, columns, copy, start, end):
        """A copy of codes [0, end) in the backend's own layout, given the copy of [0, start); None: none kept."""
        return None

    def scanned_bytes_per_code(self, bits: int) -> float:
        """Bytes a search reads per gallery code: by default the stored words."""
        return float(lane_dtype(bits).itemsize * words_per_code(bits))

    def one_query_bytes_per_code(self, bits: int, n: int) -> float:
        """Bytes per code a one-query search of ``n`` codes reads at most: by default as any search."""
        return self.scanned_bytes_per_code(bits)


_NO_PAGES = np.zeros(0, np.uint64)


@dataclass(frozen=True)
class _BitSlicedCopies:
    """The CPU backend's copies of the gallery: blocks (dagh.runtime._bitsliced) and pages (dagh.runtime._pages)."""

    blocks: np.ndarray
    pages: np.ndarray  # empty below the backend's pages_min_codes


class _NumbaBackend(Backend):
    """Compiled fused scan + exact selection on the CPU (dagh.runtime._numba_kernels)."""

    def __init__(self, bits: int):
        numba = require("numba", extra="index", purpose="the CPU Hamming index (backend='cpu')")
        from dagh.runtime import _bitsliced, _numba_kernels, _pages

        self.kernels = _numba_kernels
        self.bitsliced = _bitsliced
        self.pages = _pages
        self.numba = numba
        # Chunking (dagh.runtime._numba_kernels.chunk_codes): tests lower min_chunk and raise
        # tasks_per_thread to split small galleries into many chunks.
        self.min_chunk = MIN_CHUNK
        self.tasks_per_thread = 1
        self.bits = bits
        # Codes up to 255 bits are searched bit-sliced (a transposed copy of the gallery); longer ones word by word.
        self.roles = _bitsliced.plane_roles(bits) if bits <= _bitsliced.MAX_BITS else None
        # From this gallery size on, one-query searches read a page copy (tests lower it for small galleries).
        self.pages_min_codes = _pages.min_codes(bits) if self.roles is not None else 0
        self.dtype = np.uint8 if bits <= 255 else np.uint16
        self.lock = threading.Lock()  # numba's default threading layer is not re-entrant

    def mirror(self, columns, copy, start, end):
        """The bit-sliced copies of codes [0, end), given ``copy`` holding [0, start) (None: nothing yet).

        The block copy always; the page copy too once the gallery holds
        ``pages_min_codes`` codes (dagh.runtime._pages: one-query searches of
        large galleries read about half the bytes from it)."""
        # Written in place past ``start`` (invisible to searches of the shorter gallery) unless it must grow.
        if self.roles is None:
            return None
        stride = len(self.roles)
        capacity_blocks = -(-columns.shape[1] // self.bitsliced.BLOCK_CODES)
        blocks, pages = (None, _NO_PAGES) if copy is None else (copy.blocks, copy.pages)
        if blocks is None or len(blocks) < capacity_blocks * stride * 4:  # new arrays: searches keep the old
            grown = np.zeros(capacity_blocks * stride * 4, np.uint64)
            if blocks is None:
                start = 0
            else:
                grown[:len(blocks)] = blocks
            blocks = grown
        first_block = start // self.bitsliced.BLOCK_CODES  # the blocks write_planes rewrites
        end_block = -(-end // self.bitsliced.BLOCK_CODES)
        if end >= self.pages_min_codes:
            needed = self.pages.page_words(capacity_blocks, self.bits)
            if len(pages) < needed:
                grown = self.pages.empty_pages(needed)
                grown[:len(pages)] = pages
                if not len(pages):
                    first_block = 0  # a new page copy: every block
                pages = grown
        else:
            pages = _NO_PAGES
        with self.lock:  # parallel kernels, like the searches: one launch at a time
            if end > start:
                self.bitsliced.write_planes(columns, start, end, blocks, self.roles)
            if len(pages) and end_block > first_block:
                self.pages.copy_to_pages(blocks, first_block, end_block, stride, pages)
        return _BitSlicedCopies(blocks, pages)

    def scanned_bytes_per_code(self, bits: int) -> float:
        return len(self.roles) / 8 if self.roles is not None else super().scanned_bytes_per_code(bits)

    def one_query_bytes_per_code(self, bits: int, n: int) -> float:
        if self.roles is None or n < self.pages_min_codes:
            return self.scanned_bytes_per_code(bits)
        return self.pages.touched_planes(bits) / 8  # a plane holds one bit a code

    def _chunking(self, n: int) -> int:
        """Gallery codes per parallel task (dagh.runtime._numba_kernels.chunk_codes)."""
        return self.kernels.chunk_codes(n, self.min_chunk, self.tasks_per_thread, self.numba.get_num_threads())

    def search(self, snapshot, packed, k):
        out_d = np.empty((len(packed), k), np.int32)
        out_i = np.empty((len(packed), k), np.int64)
        with self.lock:
            if self.roles is not None:
                copies = snapshot.mirror
                self.kernels.knn_bitsliced(copies.blocks, copies.pages, snapshot.n, snapshot.ids, packed, k, self.bits,
                                           self.min_chunk, self.tasks_per_thread, QUERY_GROUP, out_d, out_i)
            else:
                self.kernels.knn_words(snapshot.columns, snapshot.n, snapshot.ids, lanes_of_checked(packed, self.bits),
                                       k, self.bits + 1, self.min_chunk, self.tasks_per_thread, QUERY_GROUP, out_d, out_i)
        return out_d, out_i

    def within(self, snapshot, queries, radius):
        n = snapshot.n
        chunk = self._chunking(n)
        parts = []
        with self.lock:
            for start in range(0, len(queries), RANGE_GROUP):
                group = np.ascontiguousarray(queries[start:start + RANGE_GROUP])
                distances = np.empty((len(group), n), self.dtype)
                hist = np.zeros((-(-n // chunk), len(group), self.bits + 1), np.int64)
                self.kernels.scan(snapshot.columns, n, group, distances, hist, chunk)
                limits = hist.sum(axis=0)[:, :radius + 1].sum(axis=1).astype(np.int64)
                thresholds, offsets, counts = self.kernels.offsets_for(hist, limits)
                width = max(1, int(limits.max()))
                out_d = np.empty((len(limits), width), np.int32)
                out_p = np.empty((len(limits), width), np.int64)
                self.kernels.collect(distances, offsets, thresholds, limits, chunk, out_d, out_p)
                parts.append((out_d, out_p, counts))
        return _stack(parts)


def _padded(distances, positions, ids, k):
    """Final rows: gallery positions mapped to ids, padded with -1 where k exceeds the gallery."""
    nq, m = distances.shape
    out_d = np.full((nq, k), -1, np.int32)
    out_i = np.full((nq, k), -1, np.int64)
    out_d[:, :m] = distances
    out_i[:, :m] = ids[positions]
    return out_d, out_i


def _stack(parts):
    """Groups' (distances, positions, counts) as one, rows padded to the widest (past a row's count: not results)."""
    width = max(p[0].shape[1] for p in parts)
    d = np.concatenate([np.pad(p[0], ((0, 0), (0, width - p[0].shape[1]))) for p in parts])
    i = np.concatenate([np.pad(p[1], ((0, 0), (0, width - p[1].shape[1]))) for p in parts])
    return d, i, np.concatenate([p[2] for p in parts])


class _NumpyBackend(Backend):
    """Plain numpy: XOR, popcount (np.bitwise_count), stable sort. The reference."""

    def __init__(self, bits: int):
        self.bits = bits

    def distances(self, words, queries):
        return np.bitwise_count(queries[:, None, :] ^ words[None, :, :]).sum(axis=2, dtype=np.int32)

    def search(self, snapshot, packed, k):
        d = self.distances(snapshot.rows, lanes_of_checked(packed, self.bits))
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        return _padded(np.take_along_axis(d, order, axis=1), order, snapshot.ids, k)

    def within(self, snapshot, queries, radius):
        d = self.distances(snapshot.rows, queries)
        order = np.argsort(d, axis=1, kind="stable")
        sorted_d = np.take_along_axis(d, order, axis=1)
        return sorted_d, order, (sorted_d <= radius).sum(axis=1)


class _FaissBackend(Backend):
    """faiss IndexBinaryFlat, as the reference in benchmarks (codes padded to whole words)."""

    def __init__(self, bits: int):
        self.faiss = require("faiss", extra="faiss", purpose="backend='faiss'")
        self.bits = bits

    def _index(self, words):
        index = self.faiss.IndexBinaryFlat(words.shape[1] * words.dtype.itemsize * 8)
        index.add(np.ascontiguousarray(words).view(np.uint8).reshape(len(words), -1))
        return index

    def search(self, snapshot, packed, k):
        queries = lanes_of_checked(packed, self.bits)
        words = snapshot.rows
        index = self._index(words)
        d, i = index.search(np.ascontiguousarray(queries).view(np.uint8).reshape(len(queries), -1),
                            min(k, snapshot.n))
        # faiss orders ties by its own heap, not by insertion: re-sort ties stably.
        key = d.astype(np.int64) * (len(words) + 1) + i
        order = np.argsort(key, axis=1, kind="stable")
        return _padded(np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1), snapshot.ids, k)

    def within(self, snapshot, queries, radius):
        return _NumpyBackend(self.bits).within(snapshot, queries, radius)


def _make_backend(name: str, bits: int):
    if name == "cpu":
        return _NumbaBackend(bits)
    if name == "numpy":
        return _NumpyBackend(bits)
    if name == "faiss":
        return _FaissBackend(bits)
    from dagh.runtime.index_gpu import GpuBackend

    return GpuBackend(bits)

