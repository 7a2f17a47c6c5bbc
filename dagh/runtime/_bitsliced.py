"""Bit-sliced k-nearest scan for codes of up to 255 bits (numba; compiled on first use).

The gallery is also kept transposed, in blocks of 256 codes: for each block and
each code bit j, one 4 x uint64 "plane" holds bit j of the block's 256 codes
(lane l, bit b = code 64 l + b of the block). Distances to a query are then
counted for all 256 codes at once with carry-save adders over the planes
XOR-ed with the query's bits (Harley-Seal: 15 adders of 5 logic operations per
16 planes), into eight bit planes of the count. A comparison with the running
threshold, also bit-sliced, gives the codes under it; only those (rare once
the threshold settles) are read out and filed as candidates (dagh.runtime._topk).

Why: a 64-bit code costs ~1.4 vector logic operations here against ~2.5 for
XOR + vpshufb popcount + min, and every operation is a plain AND/OR/XOR that
runs on every vector port (measured: the scan of one query runs at the speed
of a bare XOR + popcount sum over the same bytes).

Layout: ``planes`` is a flat uint64 array; plane j of block b, lane l is at
``(b * padded_bits + j) * 4 + l``, with ``padded_bits`` the code length rounded
up to 8 (the padding planes are zero in gallery and queries alike).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from dagh.runtime._simd import address, any4, load4, popcount, splat4, store4, trailing_zeros64, word_at
from dagh.runtime._topk import _accept, _chunk_state, _other_chunks_bound

BLOCK_CODES = 256           # codes per block: 4 lanes x 64 bits
MAX_BITS = 255              # counts must fit the eight count planes
TILE_BYTES = 16384          # planes per tile: stays in L1 while every query of the group scans it
_u = np.uint64


def padded_bits(bits: int) -> int:
    """Planes per block for ``bits``-bit codes: rounded up to a multiple of 8."""
    return -(-bits // 8) * 8


@njit(parallel=True, nogil=True, cache=True)
def write_planes(columns, start, end, planes, padded):
    """Transpose codes [start, end) of the word-major ``columns`` into ``planes``.

    Whole 64-code lanes are rewritten (codes before ``start`` in the first lane
    get the same bits again, codes past ``end`` zeros), so a search reading an
    older, shorter gallery meanwhile sees its own codes unchanged.
    """
    words = columns.shape[0]
    lane_bits = columns.itemsize * 8
    for group in prange(start // 64, (end + 63) // 64):
        block = group // 4
        lane = group % 4
        lo = group * 64
        hi = min(end, lo + 64)
        for j in range(padded):
            w = j // lane_bits
            shift = j % lane_bits
            word = _u(0)
            if w < words:
                for i in range(lo, hi):
                    word |= _u((columns[w, _u(i)] >> shift) & 1) << _u(i - lo)
            planes[_u((block * padded + j) * 4 + lane)] = word


@njit(nogil=True, cache=True)
def query_masks(queries, padded):
    """Per query, per plane j: a word of all-ones where bit j of the query is set, else zero.

    One word per plane, broadcast to the four lanes as it is used: a batch of
    queries' masks then takes a quarter of the cache a 4-lane copy would.
    """
    groups, words = queries.shape
    lane_bits = queries.itemsize * 8
    masks = np.zeros(groups * padded, np.uint64)
    for g in range(groups):
        for j in range(padded):
            w = j // lane_bits
            if w < words and (queries[g, w] >> (j % lane_bits)) & 1:
                masks[g * padded + j] = ~_u(0)
    return masks


@njit(inline="always")
def _csa(a, b, c):
    """Carry-save adder of three bit planes: (carry, sum), the carry of twice the weight."""
    u = a ^ b
    return (a & b) | (u & c), u ^ c


@njit(inline="always")
def _x(planes, base, masks, qbase, j):  # planes, masks: addresses (see dagh.runtime._simd.address)
    """Plane j of the block XOR the query: a 1 where code and query differ in bit j."""
    return load4(planes, base + _u(4) * j) ^ splat4(word_at(masks, qbase + j))


@njit(inline="always")
def _add8(planes, base, masks, qbase, j, c0, c1, c2):
    """Add planes j..j+7 into the count planes of weight 1, 2, 4; returns them and the carry of weight 8."""
    t2a, c0 = _csa(c0, _x(planes, base, masks, qbase, j), _x(planes, base, masks, qbase, j + _u(1)))
    t2b, c0 = _csa(c0, _x(planes, base, masks, qbase, j + _u(2)), _x(planes, base, masks, qbase, j + _u(3)))
    t4a, c1 = _csa(c1, t2a, t2b)
    t2a, c0 = _csa(c0, _x(planes, base, masks, qbase, j + _u(4)), _x(planes, base, masks, qbase, j + _u(5)))
    t2b, c0 = _csa(c0, _x(planes, base, masks, qbase, j + _u(6)), _x(planes, base, masks, qbase, j + _u(7)))
    t4b, c1 = _csa(c1, t2a, t2b)
    t8, c2 = _csa(c2, t4a, t4b)
    return c0, c1, c2, t8


@njit(inline="always")
def _ripple(c4, c5, c6, c7, carry):
    """Add a carry plane into count planes c4..c7 (rare: once per 16 planes)."""
    t = c4 & carry
    c4 = c4 ^ carry
    carry = t
    t = c5 & carry
    c5 = c5 ^ carry
    carry = t
    t = c6 & carry
    c6 = c6 ^ carry
    return c4, c5, c6, c7 ^ t


@njit(inline="always")
def _count(planes, block, padded, masks, qbase):
    """The eight count planes (weights 1..128) of the block's distances to the query.

    ``planes`` and ``masks`` are addresses (dagh.runtime._simd.address), not arrays."""
    base = _u(block) * _u(padded * 4)
    zero = splat4(_u(0))
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = zero
    whole = padded - padded % 16
    for j in range(0, whole, 16):
        c0, c1, c2, e1 = _add8(planes, base, masks, qbase, _u(j), c0, c1, c2)
        c0, c1, c2, e2 = _add8(planes, base, masks, qbase, _u(j + 8), c0, c1, c2)
        s16, c3 = _csa(c3, e1, e2)
        c4, c5, c6, c7 = _ripple(c4, c5, c6, c7, s16)
    if whole < padded:  # 8 planes left
        c0, c1, c2, e = _add8(planes, base, masks, qbase, _u(whole), c0, c1, c2)
        carry = c3 & e
        c3 = c3 ^ e
        c4, c5, c6, c7 = _ripple(c4, c5, c6, c7, carry)
    return c0, c1, c2, c3, c4, c5, c6, c7


@njit(inline="always")
def _borrow(c, bound, p, borrow):
    """One step of the bit-sliced c < bound: the borrow out of bit p of c - bound.

    With bound's bit p known, (~c & b) | (~(c ^ b) & borrow) is ~c | borrow
    (b = 1) or ~c & borrow (b = 0): no broadcast of the bound per block.
    """
    if (bound >> p) & 1:
        return ~(c & ~borrow)
    return ~c & borrow


@njit(inline="always")
def _below(counts, bound, bits):
    """A plane with a 1 for every code whose count is < bound (bound <= bits + 1)."""
    if bound > bits:
        return splat4(~_u(0))
    c0, c1, c2, c3, c4, c5, c6, c7 = counts
    borrow = splat4(_u(0))
    borrow = _borrow(c0, bound, 0, borrow)
    borrow = _borrow(c1, bound, 1, borrow)
    borrow = _borrow(c2, bound, 2, borrow)
    borrow = _borrow(c3, bound, 3, borrow)
    if bits >= 16:  # counts of up to 15 live in c0..c3
        borrow = _borrow(c4, bound, 4, borrow)
        borrow = _borrow(c5, bound, 5, borrow)
        borrow = _borrow(c6, bound, 6, borrow)
        borrow = _borrow(c7, bound, 7, borrow)
    return borrow


@njit(inline="always")
def _kth_smallest(scratch, k):
    """The k-th smallest count among the codes marked in scratch[32:36] (at least k of them).

    Bit-sliced selection on the count planes in scratch[0:32], top bit down:
    at each bit, keep the codes with a 0 there if at least k remain, else
    count them as below and keep the codes with a 1.
    """
    m0, m1, m2, m3 = scratch[32], scratch[33], scratch[34], scratch[35]
    below = 0
    kth = 0
    for p in range(7, -1, -1):
        z0 = m0 & ~scratch[4 * p]
        z1 = m1 & ~scratch[4 * p + 1]
        z2 = m2 & ~scratch[4 * p + 2]
        z3 = m3 & ~scratch[4 * p + 3]
        zeros = np.int64(popcount(z0) + popcount(z1) + popcount(z2) + popcount(z3))
        if below + zeros >= k:
            m0, m1, m2, m3 = z0, z1, z2, z3
        else:
            below += zeros
            m0, m1, m2, m3 = m0 & scratch[4 * p], m1 & scratch[4 * p + 1], m2 & scratch[4 * p + 2], \
                m3 & scratch[4 * p + 3]
            kth |= 1 << p
    return kth


@njit(inline="always")
def _marked(scratch):
    """How many codes scratch[32:36] marks."""
    return np.int64(popcount(scratch[32]) + popcount(scratch[33]) + popcount(scratch[34]) + popcount(scratch[35]))


@njit(inline="always")
def _valid(scratch, block, n):
    """A plane with a 1 for each code of the block that lies before n."""
    for lane in range(4):
        left = n - block * BLOCK_CODES - lane * 64
        scratch[32 + lane] = ~_u(0) if left >= 64 else (_u(0) if left <= 0 else (_u(1) << _u(left)) - _u(1))
    return load4(scratch, _u(32))


@njit(parallel=True, nogil=True, cache=True)
def topk_scan(planes, padded, bits, n, masks, k, chunk, shared_u, cand_d, cand_p, cand_n):
    """Per chunk c and query g: candidates (cand_d/cand_p[c, g, :cand_n[c, g]]) holding the chunk's top k.

    ``planes`` as in the module docstring, ``masks`` from query_masks (``padded``
    words per query), ``chunk`` a multiple of 256. Chunks run
    in parallel and share their thresholds through ``shared_u`` exactly as the
    word-major scan does (see dagh.runtime._numba_kernels.topk_scan).
    """
    for c in prange(cand_d.shape[0]):
        _scan_chunk(c, planes, padded, bits, n, masks, k, chunk, shared_u, cand_d, cand_p, cand_n)


@njit(nogil=True, cache=True)
def topk_scan_serial(planes, padded, bits, n, masks, k, chunk, shared_u, cand_d, cand_p, cand_n):
    """topk_scan on the calling thread: for one chunk, where starting the thread pool costs more than it saves."""
    for c in range(cand_d.shape[0]):
        _scan_chunk(c, planes, padded, bits, n, masks, k, chunk, shared_u, cand_d, cand_p, cand_n)


@njit(inline="always")
def _scan_chunk(c, planes, padded, bits, n, masks, k, chunk, shared_u, cand_d, cand_p, cand_n):
    """Chunk c against every query: walked in tiles that stay in L1 while every query of the group scans them."""
    bins = bits + 1
    groups, cap = cand_d.shape[1], cand_d.shape[2]
    tile = max(1, TILE_BYTES // (padded * 32))
    planes_at = address(planes)
    masks_at = address(masks)
    lo = c * chunk
    hi = min(n, lo + chunk)
    first_block = lo // BLOCK_CODES
    end_block = (hi + BLOCK_CODES - 1) // BLOCK_CODES
    counts, limit, cum, total, size = _chunk_state(groups, bins)
    scratch = np.empty(36, np.uint64)         # 8 count planes, then a mask plane
    for tile_start in range(first_block, end_block, tile):
        tile_end = min(end_block, tile_start + tile)
        for g in range(groups):
            u = limit[g]
            ext = _other_chunks_bound(shared_u, c, g, bins)  # for this tile
            qbase = _u(g * padded)
            for block in range(tile_start, tile_end):
                counted = _count(planes_at, block, padded, masks_at, qbase)
                under = _below(counted, min(u, ext), bits)
                if (block + 1) * BLOCK_CODES > n:  # the gallery's last block: codes past n are not in it
                    under = under & _valid(scratch, block, n)
                if any4(under):  # rare once U settles: file the codes under it, in position order
                    for p in range(8):
                        store4(scratch, _u(4 * p), counted[p])
                    store4(scratch, _u(32), under)
                    if _marked(scratch) > k:
                        # More than k codes of this block under the bound (the first blocks): a code
                        # beyond the block's own k-th smallest cannot be in the top k; do not file it.
                        under = under & _below(counted, _kth_smallest(scratch, k) + 1, bits)
                        store4(scratch, _u(32), under)
                    for lane in range(4):
                        mask = scratch[32 + lane]
                        while mask:
                            b = trailing_zeros64(mask)
                            mask &= mask - _u(1)
                            d = np.int64(0)
                            for p in range(8):
                                d |= np.int64((scratch[_u(4 * p + lane)] >> b) & _u(1)) << p
                            if d < u and d < ext:  # u falls as codes are filed
                                position = block * BLOCK_CODES + lane * 64 + np.int64(b)
                                u = _accept(d, g, c, k, bins, cap, u, cand_d, cand_p, size, counts, cum,
                                            total, position)
            limit[g] = u
            shared_u[c, g] = u
    for g in range(groups):
        cand_n[c, g] = size[g]
