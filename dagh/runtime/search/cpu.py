"""The CPU backend of HammingIndex: compiled fused scan + exact selection (numba).

The kernels are in dagh.runtime.search.kernels: ``scan`` drives a search,
``bitsliced`` and ``pages`` hold the two bit-sliced copies of the gallery and
their counting, ``topk`` the candidate filing and the merge, ``simd`` the
small vector type they are written in. docs/search.md describes the design.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from dagh._optional import require
from dagh.runtime.bits import lanes_of_checked
from dagh.runtime.search.backend import Backend, stack_groups

QUERY_GROUP = 128        # queries per pass over the gallery: each L1 tile serves them all (16 -> 128: 1.4x at 1M)
RANGE_GROUP = 16         # queries per range-search pass: it keeps a distance byte per code and query
MIN_CHUNK = 8192         # gallery codes per parallel task, at least


_NO_PAGES = np.zeros(0, np.uint64)


@dataclass(frozen=True)
class _BitSlicedCopies:
    """The CPU backend's copies of the gallery: blocks (dagh.runtime.search.kernels.bitsliced) and pages (dagh.runtime.search.kernels.pages)."""

    blocks: np.ndarray
    pages: np.ndarray  # empty below the backend's pages_min_codes


class CpuBackend(Backend):
    """Compiled fused scan + exact selection on the CPU (dagh.runtime.search.kernels.scan)."""

    def __init__(self, bits: int):
        numba = require("numba", extra="index", purpose="the CPU Hamming index (backend='cpu')")
        from dagh.runtime.search.kernels import bitsliced, pages, scan

        self.kernels = scan
        self.bitsliced = bitsliced
        self.pages = pages
        self.numba = numba
        # Chunking (dagh.runtime.search.kernels.scan.chunk_codes): tests lower min_chunk and raise
        # tasks_per_thread to split small galleries into many chunks.
        self.min_chunk = MIN_CHUNK
        self.tasks_per_thread = 1
        self.bits = bits
        # Codes up to 255 bits are searched bit-sliced (a transposed copy of the gallery); longer ones word by word.
        self.roles = bitsliced.plane_roles(bits) if bits <= bitsliced.MAX_BITS else None
        # From this gallery size on, one-query searches read a page copy (tests lower it for small galleries).
        self.pages_min_codes = pages.min_codes(bits) if self.roles is not None else 0
        self.dtype = np.uint8 if bits <= 255 else np.uint16
        self.lock = threading.Lock()  # numba's default threading layer is not re-entrant

    def mirror(self, columns, copy, start, end):
        """The bit-sliced copies of codes [0, end), given ``copy`` holding [0, start) (None: nothing yet).

        The block copy always; the page copy too once the gallery holds
        ``pages_min_codes`` codes (dagh.runtime.search.kernels.pages: one-query searches of
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
        """Gallery codes per parallel task (dagh.runtime.search.kernels.scan.chunk_codes)."""
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
        return stack_groups(parts)
