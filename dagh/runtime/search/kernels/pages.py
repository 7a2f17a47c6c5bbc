"""A second bit-sliced copy for one-query searches of large galleries: each plane in pages of its own (numba).

The block copy (dagh.runtime.search.kernels.bitsliced) keeps a block's planes together. A
one-query search counts only the planes where the query has its rarer bit
value, about half, yet from memory it costs as much as reading them all: the
hardware prefetchers fetch the whole block. Here the same planes are grouped
by SUPER = 128 blocks, and within a group each slot (plane) of the 128 blocks
is one 4 KB page:

    word of block b, slot s, lane l = ((b // SUPER) * stride + s) * SUPER * 4 + (b % SUPER) * 4 + l

so the pages of the planes a query skips are never touched. The one-query scan
counts 8 listed planes at a time over the blocks of a group (per-block count
planes kept in a small buffer), then files the codes under the threshold
exactly as the block scan does (_bitsliced.file_under).

Measured (benchmarks/plane_layout.py, 128 bits, 2 threads): one query 1.45-1.90x
faster at 1M codes, 1.6-1.7x at 8M, no better at 100k (in cache); batches read
it 20-45% slower than blocks, so they keep the block copy, and this one is
kept only for galleries whose block copy outgrows a core's L2 cache
(``min_codes``; it doubles the bit-sliced memory).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from dagh.runtime.search.kernels.bitsliced import (
    _MASK,
    BLOCK_CODES,
    _add8,
    _ripple,
    block_stride,
    file_under,
    is_wide,
    plan_entries,
    popcount_planes,
)
from dagh.runtime.search.kernels.simd import address, load4, splat4, store4
from dagh.runtime.search.kernels.topk import _chunk_state, _other_chunks_bound

SUPER = 128                  # blocks a page group holds: 128 blocks x 32 bytes = one 4 KB page a plane
PAGE_BYTES = SUPER * 32
UNKNOWN_L2_BYTES = 1 << 20   # assumed where the system does not say
_COUNTED = 9                 # planes of T per block in the count buffer
_u = np.uint64


@functools.cache  # read once a process: every HammingIndex asks at construction
def cache_bytes(level: int, root: str = "/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """The size of CPU 0's largest data or unified cache of ``level`` (Linux sysfs), or None where none is listed."""
    import glob
    import os

    best = None
    for entry in glob.glob(os.path.join(root, "index*")):
        try:
            with open(os.path.join(entry, "level")) as f:
                found = int(f.read())
            with open(os.path.join(entry, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(entry, "size")) as f:
                text = f.read().strip().upper()
        except (OSError, ValueError):
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if found == level and kind != "Instruction" and digits.isdigit():
            best = max(best or 0, int(digits) * scale)
    return best


MAX_TOUCHED_SHARE = 0.6      # keep pages only where a one-query scan touches at most this share of the planes
NEVER = np.iinfo(np.int64).max


def touched_planes(bits: int) -> int:
    """The planes of a block a one-query scan of the page copy touches at most: the popcount's and the longest list."""
    return int(popcount_planes(bits)) + int(plan_entries(bits))


def touched_share(bits: int) -> float:
    """touched_planes as a share of a block's planes."""
    return touched_planes(bits) / int(block_stride(bits))


def min_codes(bits: int, l2_bytes: int | None = None) -> int:
    """The gallery size from which the index keeps a page copy: its block copy as large as a core's L2 cache.

    Never (``NEVER``) for code lengths where a one-query scan would still touch
    more than MAX_TOUCHED_SHARE of the planes (12, 24, 36, 40 bits: the list
    padded to 8 planes and the popcount's leave little unread): measured at 1M
    codes, 12 and 24 bits, warm, pages 0.94-1.05x and the streaming share fell
    (24 bits: 63%); 16 bits (0.59) tied warm, 1.27-1.31x cold; 32 bits (0.55)
    1.15-1.34x warm, 1.43-1.47x cold.

    Smaller copies stay in the caches between searches and read as fast from
    blocks. Measured here (512 KiB L2 a core, 32 MiB L3; `benchmarks/plane_layout.py
    --index`, one query, blocks / pages): 100k 12-64-bit codes (0.2-0.9 MB)
    0.88-1.18x; 500k 12-bit (1.1 MB) 1.0-1.15x; 100k 128-bit (1.7 MB) 1.15-1.24x;
    500k 48/64-bit (3.5/4.5 MB) 1.11-1.49x; 1M 128-bit 1.5-2x. At least one page group.
    """
    if touched_share(bits) > MAX_TOUCHED_SHARE:
        return NEVER
    cache = l2_bytes or cache_bytes(2) or UNKNOWN_L2_BYTES
    per_code = int(block_stride(bits)) / 8
    return max(SUPER * BLOCK_CODES, int(np.ceil(cache / per_code)))


def page_words(blocks: int, bits: int) -> int:
    """uint64 words of a page copy holding ``blocks`` blocks (whole page groups)."""
    return -(-blocks // SUPER) * SUPER * int(block_stride(bits)) * 4


def empty_pages(words: int) -> np.ndarray:
    """A zeroed uint64 array of ``words`` starting on a page boundary (so each plane's run is whole pages)."""
    buffer = np.zeros(words + PAGE_BYTES // 8, np.uint64)
    skip = (-buffer.ctypes.data % PAGE_BYTES) // 8
    return buffer[skip:skip + words]


@njit(parallel=True, nogil=True, cache=True)
def copy_to_pages(planes, first_block, end_block, stride, pages):
    """Copy blocks [first_block, end_block) of the block copy ``planes`` into ``pages``."""
    for b in prange(first_block, end_block):
        target = ((b // SUPER) * stride * SUPER + b % SUPER) * 4
        source = b * stride * 4
        for s in range(stride):
            for lane in range(4):
                pages[target + s * SUPER * 4 + lane] = planes[source + s * 4 + lane]


@njit(inline="always")
def load_counted(buffer_at, t):
    """The nine T planes _count_group left for the t-th block of its range (an ``address`` of its buffer)."""
    o = _u(t * _COUNTED * 4)
    return (load4(buffer_at, o), load4(buffer_at, o + _u(4)), load4(buffer_at, o + _u(8)), load4(buffer_at, o + _u(12)),
            load4(buffer_at, o + _u(16)), load4(buffer_at, o + _u(20)), load4(buffer_at, o + _u(24)),
            load4(buffer_at, o + _u(28)), load4(buffer_at, o + _u(32)))


@njit(inline="always")
def _count_group(pages_at, group_base, first, count, offsets_at, length, m, flip, buffer):
    """T planes of blocks first..first+count of a page group into ``buffer`` (9 planes a block).

    As _bitsliced._count, with the list's planes added 8 at a time over all the
    blocks (each listed plane a sequential read of its page)."""
    buffer_at = address(buffer)
    unflip = ~flip
    zero = splat4(_u(0))
    pitch = SUPER * 4
    for t in range(count):  # the count starts at w >> 1; T's bit 0 is w's bit 0
        base = group_base + _u((first + t) * 4)
        o = _u(t * _COUNTED * 4)
        for p in range(_COUNTED):
            store4(buffer, o + _u(4 * p), load4(pages_at, base + _u(p * pitch)) ^ unflip if p < m else zero)
    for e in range(0, length, 8):
        for t in range(count):
            base = group_base + _u((first + t) * 4)
            o = _u(t * _COUNTED * 4)
            c0, c1, c2 = load4(buffer_at, o + _u(4)), load4(buffer_at, o + _u(8)), load4(buffer_at, o + _u(12))
            c3, c4, c5 = load4(buffer_at, o + _u(16)), load4(buffer_at, o + _u(20)), load4(buffer_at, o + _u(24))
            c6, c7 = load4(buffer_at, o + _u(28)), load4(buffer_at, o + _u(32))
            c0, c1, c2, carry8 = _add8(pages_at, base, offsets_at, flip, _u(e), c0, c1, c2)
            carry = c3 & carry8
            c3 = c3 ^ carry8
            c4, c5, c6, c7 = _ripple(c4, c5, c6, c7, carry)
            store4(buffer, o + _u(4), c0)
            store4(buffer, o + _u(8), c1)
            store4(buffer, o + _u(12), c2)
            store4(buffer, o + _u(16), c3)
            store4(buffer, o + _u(20), c4)
            store4(buffer, o + _u(24), c5)
            store4(buffer, o + _u(28), c6)
            store4(buffer, o + _u(32), c7)


@njit(inline="always")
def _scan_chunk(c, pages, bits, n, offsets, plan, k, chunk, start_limits, shared_u, cand_d, cand_p, cand_n):
    """Chunk c for query 0 (the only one), page group by page group."""
    bins = bits + 1
    cap = cand_d.shape[2]
    stride = block_stride(bits)
    m = popcount_planes(bits)
    wide = is_wide(bits)
    pages_at = address(pages)
    offsets_at = address(offsets)
    length, offset = plan[0, 0], plan[0, 1]
    flip = splat4(~_u(0) if plan[0, 2] else _u(0))
    lo = c * chunk
    first_block = lo // BLOCK_CODES
    end_block = (min(n, lo + chunk) + BLOCK_CODES - 1) // BLOCK_CODES
    counts, limit, cum, total, size = _chunk_state(1, bins)
    u = start_limits[0]
    scratch = np.empty(_MASK + 4, np.uint64)          # file_under's T planes and mask
    buffer = np.empty(SUPER * _COUNTED * 4, np.uint64)
    buffer_at = address(buffer)
    tile_start = first_block
    while tile_start < end_block:
        group = tile_start // SUPER
        tile_end = min(end_block, (group + 1) * SUPER)
        first = tile_start - group * SUPER
        _count_group(pages_at, _u(group * stride * SUPER * 4), first, tile_end - tile_start, offsets_at, length, m,
                     flip, buffer)
        ext = _other_chunks_bound(shared_u, c, 0, bins)
        for block in range(tile_start, tile_end):
            u = file_under(load_counted(buffer_at, block - tile_start), block, n, u, ext, offset, wide, scratch, 0, c, k, bins, cap, cand_d, cand_p,
                           size, counts, cum, total)
        published = u if cum[0] >= k else bins  # as the block scan: once earned, only when changed
        if shared_u[c, 0] != published:
            shared_u[c, 0] = published
        tile_start = tile_end
    cand_n[c, 0] = size[0]


@njit(parallel=True, nogil=True, cache=True)
def topk_scan(pages, bits, n, offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p, cand_n):
    """_bitsliced.topk_scan for one query over the page copy; ``offsets``: its plan's slot offsets x SUPER."""
    for c in prange(cand_d.shape[0]):
        _scan_chunk(c, pages, bits, n, offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p, cand_n)


@njit(nogil=True, cache=True)
def topk_scan_serial(pages, bits, n, offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p, cand_n):
    """topk_scan on the calling thread (one chunk)."""
    for c in range(cand_d.shape[0]):
        _scan_chunk(c, pages, bits, n, offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p, cand_n)
