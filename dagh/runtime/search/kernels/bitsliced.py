"""Bit-sliced k-nearest scan for codes of up to 255 bits (numba; compiled on first use).

The gallery is also kept transposed, in blocks of 256 codes: for each block and
each code bit j, one 4 x uint64 "plane" holds bit j of the block's 256 codes
(lane l, bit b = code 64 l + b of the block), and m more planes hold the bits
of each code's popcount |x| (m = bit length of the code length).

Distances are counted for all 256 codes of a block at once, over only the
planes where the query has its rarer bit value (at most half of them):

    d(q, x) = 2 * #{j : q_j = 0, x_j = 1} + |q| - |x|        (S = q's zero bits)
            = 2 * #{j : q_j = 1, x_j = 0} + |x| - |q|        (S = q's one bits)

so with S the smaller set, T = 2 * (count of planes j in S, XOR-ed with the
query's bit) + w, where w = |x| or its complement ~|x| = M - |x| on m bits,
is d plus a per-query constant. The count runs through carry-save adders
(Harley-Seal: 15 adders of 5 logic operations per 16 planes) into count planes
that start at w >> 1 rather than zero; bit 0 of T is w's bit 0. The list of
planes is padded to a multiple of 8 with the block's zero plane (a constant
0 or 1 per code, as the query's bit says). A bit-sliced
comparison with the running threshold (a borrow chain) marks the codes under
it; only those (rare once the threshold settles) are read out and filed as
candidates (dagh.runtime.search.kernels.topk).

Why: a 64-bit code costs ~0.8 vector logic operations here (half the planes
of counting every bit, which was itself ~1.4 against ~2.5 for XOR + vpshufb
popcount + min), all plain AND/OR/XOR that run on every vector port. Measured
(100 queries over 32k codes in cache, 2-vCPU Zen 3, back to back with the
scan that counts every bit): 116-128 against 140-183 cycles per block and
query at 64 bits, 208-224 against 251-339 at 128 (the host is shared).

Layout: ``planes`` is a flat uint64 array; plane slot s of block b, lane l is
at ``(b * stride + s) * 4 + l`` (``block_stride``). Slots 0..m-1 hold the bits
of the popcount, slot m + i code bit i, slot m + bits zeros (``plane_roles``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from dagh.runtime.search.kernels.simd import (
    address,
    any4,
    load4,
    popcount,
    splat4,
    store4,
    trailing_zeros64,
    word_at,
)
from dagh.runtime.search.kernels.topk import _accept, _chunk_state, _other_chunks_bound

BLOCK_CODES = 256           # codes per block: 4 lanes x 64 bits
MAX_BITS = 255              # T >> 1 must fit the eight count planes
TILE_BYTES = 16384          # planes per tile: stay in L1 while every query of the group scans them
ENTRY_GROUP = 8             # a query's plane list is padded to a multiple of this (one _add8)
_ZERO = -1 << 20            # role of a slot that holds zeros
_u = np.uint64


@njit(cache=True)
def popcount_planes(bits):
    """m: the planes of a code's popcount (its bit length, at least 2)."""
    m = 2
    while (1 << m) <= bits:
        m += 1
    return m


@njit(cache=True)
def block_stride(bits):
    """Planes per block: the popcount's, one per code bit, a zero plane, rounded to whole 64-byte lines."""
    stride = popcount_planes(bits) + bits + 1
    return stride + stride % 2


@njit(cache=True)
def plan_entries(bits):
    """The longest plane list a query can have: half its bits, padded to a multiple of ENTRY_GROUP."""
    return -(-(bits // 2) // ENTRY_GROUP) * ENTRY_GROUP


@njit(cache=True)
def is_wide(bits):
    """Whether T >> 1 may exceed 15 (else four count planes hold it)."""
    return plan_entries(bits) + (1 << (popcount_planes(bits) - 1)) - 1 > 15


def plane_roles(bits: int) -> np.ndarray:
    """What each slot of a block holds, for write_planes: popcount bit t as -1 - t, lane bit j >= 0, or _ZERO.

    Slots 0..m-1 hold the popcount (first: a block is read from its start, the
    pattern hardware prefetchers follow); slot m + i holds code bit i, which
    packed rows keep at bit 7 - i % 8 of byte i // 8, i.e. at lane bit
    8 (i // 8) + 7 - i % 8 of the index's little-endian lanes, whatever their
    width; the slots after those hold zeros."""
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bit-sliced codes have 1..{MAX_BITS} bits, got {bits}")
    m = popcount_planes(bits)
    roles = np.full(block_stride(bits), _ZERO, np.int64)
    roles[:m] = -1 - np.arange(m)
    i = np.arange(bits)
    roles[m:m + bits] = (i // 8) * 8 + 7 - i % 8
    return roles


@njit(parallel=True, nogil=True, cache=True)
def write_planes(columns, start, end, planes, roles):
    """Transpose codes [start, end) of the word-major ``columns`` into ``planes`` (slots as ``roles`` says).

    Whole 64-code lanes are rewritten (codes before ``start`` in the first lane
    get the same bits again, codes past ``end`` zeros), so a search reading an
    older, shorter gallery meanwhile sees its own codes unchanged.
    """
    words = columns.shape[0]
    lane_bits = columns.itemsize * 8
    stride = roles.shape[0]
    for group in prange(start // 64, (end + 63) // 64):
        block = group // 4
        lane = group % 4
        lo = group * 64
        hi = min(end, lo + 64)
        for s in range(stride):
            role = roles[s]
            word = _u(0)
            if role >= 0:  # a code bit
                w = role // lane_bits
                shift = role % lane_bits
                for i in range(lo, hi):
                    word |= _u((columns[w, _u(i)] >> shift) & 1) << _u(i - lo)
            elif role != _ZERO:  # bit t of the code's popcount
                t = -1 - role
                for i in range(lo, hi):
                    ones = 0
                    for v in range(words):
                        ones += np.int64(popcount(columns[v, _u(i)]))
                    word |= _u((ones >> t) & 1) << _u(i - lo)
            planes[_u((block * stride + s) * 4 + lane)] = word


@njit(inline="always")
def _plan_one(packed, bits, g, offsets, plan):
    """Query g's row of query_plans."""
    m = popcount_planes(bits)
    top = (1 << m) - 1  # M: ~|x| on m bits is M - |x|
    ones = 0
    for i in range(bits):
        ones += (packed[g, i >> 3] >> (7 - (i & 7))) & 1
    take_ones = ones <= bits - ones  # S: count ~x over q's one bits, else x over its zero bits
    wanted = 1 if take_ones else 0
    length = 0
    for i in range(bits):
        if (packed[g, i >> 3] >> (7 - (i & 7))) & 1 == wanted:
            offsets[g, length] = _u(4 * (m + i))
            length += 1
    pad = (-length) % ENTRY_GROUP
    for _ in range(pad):  # the zero plane: 0 per code, or 1 where the list is inverted
        offsets[g, length] = _u(4 * (m + bits))
        length += 1
    plan[g, 0] = length
    plan[g, 1] = -ones - 2 * pad if take_ones else ones - top
    plan[g, 2] = wanted


@njit(nogil=True, cache=True)
def query_plans(packed, bits):
    """Per query (packed uint8 rows): the planes to count and how (see module docstring).

    Returns ``offsets`` [queries, plan_entries(bits)] (word offset of each
    listed plane within a block) and ``plan`` [queries, 3]: (list length,
    offset with d = T + offset, 1 where the listed planes are inverted and the
    popcount's not, i.e. S is the query's one bits).
    """
    offsets = np.zeros((packed.shape[0], max(1, plan_entries(bits))), np.uint64)
    plan = np.zeros((packed.shape[0], 3), np.int64)
    for g in range(packed.shape[0]):
        _plan_one(packed, bits, g, offsets, plan)
    return offsets, plan


@njit(parallel=True, nogil=True, cache=True)
def query_plans_parallel(packed, bits):
    """query_plans with the queries spread over the threads (a batch: ~1.2 us a 128-bit query, serial)."""
    offsets = np.zeros((packed.shape[0], max(1, plan_entries(bits))), np.uint64)
    plan = np.zeros((packed.shape[0], 3), np.int64)
    for g in prange(packed.shape[0]):
        _plan_one(packed, bits, g, offsets, plan)
    return offsets, plan


@njit(inline="always")
def _csa(a, b, c):
    """Carry-save adder of three bit planes: (carry, sum), the carry of twice the weight."""
    u = a ^ b
    return (a & b) | (u & c), u ^ c


@njit(inline="always")
def _x(planes, base, offsets, flip, e):  # planes, offsets: addresses (see dagh.runtime.search.kernels.simd.address)
    """The e-th listed plane of the block XOR ``flip`` (the plan's inversion, in a register).

    One inversion for the whole list: a mask word per entry, broadcast as
    loaded, made the 128-bit scan 1.6x slower (measured)."""
    return load4(planes, base + word_at(offsets, e)) ^ flip


@njit(inline="always")
def _add8(planes, base, offsets, flip, e, c0, c1, c2):
    """Add listed planes e..e+7 into the count planes of weight 1, 2, 4; returns them and the carry of weight 8."""
    t2a, c0 = _csa(c0, _x(planes, base, offsets, flip, e), _x(planes, base, offsets, flip, e + _u(1)))
    t2b, c0 = _csa(c0, _x(planes, base, offsets, flip, e + _u(2)), _x(planes, base, offsets, flip, e + _u(3)))
    t4a, c1 = _csa(c1, t2a, t2b)
    t2a, c0 = _csa(c0, _x(planes, base, offsets, flip, e + _u(4)), _x(planes, base, offsets, flip, e + _u(5)))
    t2b, c0 = _csa(c0, _x(planes, base, offsets, flip, e + _u(6)), _x(planes, base, offsets, flip, e + _u(7)))
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
def _weight(planes, base, t, m, flip):
    """Popcount plane t of the block (slot t; inverted with ``flip``), or zeros past the m stored."""
    if t < m:
        return load4(planes, base + _u(4 * t)) ^ flip
    return splat4(_u(0))


@njit(inline="always")
def _count(planes, block, stride, offsets, entry, length, m, flip):
    """The nine planes of T (weights 1..256) for the block and a query's plan (see module docstring).

    ``planes`` and ``offsets`` are addresses (dagh.runtime.search.kernels.simd.address); the
    plan's list is offsets[entry:entry + length], inverted with ``flip``, the
    popcount planes with ~flip.
    """
    base = _u(block) * _u(stride * 4)
    zero = splat4(_u(0))
    unflip = ~flip
    t0 = _weight(planes, base, 0, m, unflip)
    # The count starts at w >> 1: popcount bit t + 1 is count plane t.
    c0 = _weight(planes, base, 1, m, unflip)
    c1 = _weight(planes, base, 2, m, unflip)
    c2 = _weight(planes, base, 3, m, unflip)
    c3 = _weight(planes, base, 4, m, unflip)
    c4 = _weight(planes, base, 5, m, unflip)
    c5 = _weight(planes, base, 6, m, unflip)
    c6 = _weight(planes, base, 7, m, unflip)
    c7 = zero
    whole = length - length % 16
    for e in range(entry, entry + whole, 16):
        c0, c1, c2, e1 = _add8(planes, base, offsets, flip, _u(e), c0, c1, c2)
        c0, c1, c2, e2 = _add8(planes, base, offsets, flip, _u(e + 8), c0, c1, c2)
        s16, c3 = _csa(c3, e1, e2)
        c4, c5, c6, c7 = _ripple(c4, c5, c6, c7, s16)
    if whole < length:  # 8 planes left
        c0, c1, c2, e = _add8(planes, base, offsets, flip, _u(entry + whole), c0, c1, c2)
        carry = c3 & e
        c3 = c3 ^ e
        c4, c5, c6, c7 = _ripple(c4, c5, c6, c7, carry)
    return t0, c0, c1, c2, c3, c4, c5, c6, c7


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
def _below(counted, bound, wide):
    """A plane with a 1 for every code whose T is < bound (T < 32 unless ``wide``)."""
    if bound >= (512 if wide else 32):
        return splat4(~_u(0))
    t0, t1, t2, t3, t4, t5, t6, t7, t8 = counted
    borrow = splat4(_u(0))
    borrow = _borrow(t0, bound, 0, borrow)
    borrow = _borrow(t1, bound, 1, borrow)
    borrow = _borrow(t2, bound, 2, borrow)
    borrow = _borrow(t3, bound, 3, borrow)
    borrow = _borrow(t4, bound, 4, borrow)
    if wide:
        borrow = _borrow(t5, bound, 5, borrow)
        borrow = _borrow(t6, bound, 6, borrow)
        borrow = _borrow(t7, bound, 7, borrow)
        borrow = _borrow(t8, bound, 8, borrow)
    return borrow


_PLANES = 9                  # planes of T in scratch, then the mask plane
_MASK = 4 * _PLANES


@njit(inline="always")
def _kth_smallest(scratch, k):
    """The k-th smallest T among the codes marked in the mask plane of scratch (at least k of them).

    Bit-sliced selection on the T planes in scratch, top bit down: at each
    bit, keep the codes with a 0 there if at least k remain, else count them
    as below and keep the codes with a 1.
    """
    m0, m1, m2, m3 = scratch[_MASK], scratch[_MASK + 1], scratch[_MASK + 2], scratch[_MASK + 3]
    below = 0
    kth = 0
    for p in range(_PLANES - 1, -1, -1):
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
    """How many codes the mask plane of scratch marks."""
    return np.int64(popcount(scratch[_MASK]) + popcount(scratch[_MASK + 1]) + popcount(scratch[_MASK + 2])
                    + popcount(scratch[_MASK + 3]))


@njit(inline="always")
def _valid(scratch, block, n):
    """A plane with a 1 for each code of the block that lies before n."""
    for lane in range(4):
        left = n - block * BLOCK_CODES - lane * 64
        scratch[_MASK + lane] = ~_u(0) if left >= 64 else (_u(0) if left <= 0 else (_u(1) << _u(left)) - _u(1))
    return load4(scratch, _u(_MASK))


# -- a starting threshold guessed from a sample ---------------------------------------
#
# A chunk scanned from no threshold files about k (1 + ln(chunk / k)) codes before
# its threshold settles (20-30 ns each on the slow path, mostly mispredicted
# branches: at 100k 128-bit codes and k = 100, about half the search). A few blocks spread over the gallery tell
# roughly where the k-th distance lies, so the scan can start from a bound B
# instead and file only the codes at or below it. The guess is checked, not
# trusted: if fewer than k codes lie at or below B, that query is searched again
# without one (knn_bitsliced), so results stay exact whatever the data.

SAMPLE_SHARE = 16          # at most one block in this many is sampled (the sample's scan costs <= 1/16)
SAMPLE_MAX_BLOCKS = 32     # and at most this many: sampled blocks come from memory one by one, per query
SAMPLE_EXPECTED = 4.0      # codes of each half-sample expected at or below the true k-th distance
SAMPLE_MIN_EXPECTED = 2.0  # fewer than this: a guess would be noise; start from no threshold


@njit(inline="always")
def sample_plan(n, k):
    """(blocks sampled, in two interleaved halves; the rank each half takes as its bound), or (0, 0): no guess.

    The bound is the larger of the halves' rank-th smallest distances, the rank
    the expected count e plus 2 sqrt(e) plus one: a half falls below the true
    k-th distance by chance with probability <= 5% (Poisson tail, e >= 2), both
    together <= 0.3%, and a miss costs one search again; a cluster of near codes
    in one sampled block (people enrolled one after another) can pull down one
    half, not both. (Twice e plus four, tried first, filed ~1.6x as many codes:
    100k 128-bit codes, k = 100, 303 against 495 a query under the bound.)
    """
    full = n // BLOCK_CODES
    blocks = min(max(2, np.int64(np.ceil(2.0 * SAMPLE_EXPECTED * n / (k * BLOCK_CODES)))), full // SAMPLE_SHARE,
                 SAMPLE_MAX_BLOCKS)
    blocks -= blocks % 2
    expected = k * (blocks // 2) * BLOCK_CODES / n
    if blocks < 2 or expected < SAMPLE_MIN_EXPECTED:
        return 0, 0
    return blocks, np.int64(expected + 2.0 * np.sqrt(expected)) + 1


@njit(inline="always")
def sample_block(i, n, blocks):
    """The gallery block of sample i of ``blocks``: spread evenly over the whole blocks."""
    full = n // BLOCK_CODES
    return (2 * i + 1) * full // (2 * blocks)


@njit(inline="always")
def _rank_in_half(sampled, masks, half, blocks, rank):
    """The rank-th smallest T among the sampled blocks half, half + 2, ... (bit-sliced selection, top bit down).

    ``masks``: scratch of 4 words a sampled block (this half's are overwritten)."""
    for i in range(half, blocks, 2):
        for lane in range(4):
            masks[4 * i + lane] = ~_u(0)
    below = 0
    kth = 0
    for p in range(_PLANES - 1, -1, -1):
        zeros = 0
        for i in range(half, blocks, 2):
            for lane in range(4):
                zeros += np.int64(popcount(masks[4 * i + lane] & ~sampled[(i * _PLANES + p) * 4 + lane]))
        keep_ones = below + zeros < rank
        if keep_ones:
            below += zeros
            kth |= 1 << p
        for i in range(half, blocks, 2):
            for lane in range(4):
                t = sampled[(i * _PLANES + p) * 4 + lane]
                masks[4 * i + lane] &= t if keep_ones else ~t
    return kth


@njit(inline="always")
def _guess_one(planes, bits, n, offsets, plan, k, g):
    """Query g's starting threshold U (accept d < U) from the sampled blocks; bits + 1 where none pays."""
    blocks, rank = sample_plan(n, k)
    if blocks == 0:
        return bits + 1
    planes_at = address(planes)
    offsets_at = address(offsets.reshape(-1))
    entries = offsets.shape[1]
    stride = block_stride(bits)
    m = popcount_planes(bits)
    flip = splat4(~_u(0) if plan[g, 2] else _u(0))
    sampled = np.empty(blocks * _PLANES * 4, np.uint64)
    masks = np.empty(4 * blocks, np.uint64)
    for i in range(blocks):
        counted = _count(planes_at, sample_block(i, n, blocks), stride, offsets_at, g * entries, plan[g, 0], m,
                         flip)
        for p in range(_PLANES):
            store4(sampled, _u((i * _PLANES + p) * 4), counted[p])
    bound = max(_rank_in_half(sampled, masks, 0, blocks, rank), _rank_in_half(sampled, masks, 1, blocks, rank)) \
        + plan[g, 1]
    return min(bits + 1, bound + 1)


@njit(parallel=True, nogil=True, cache=True)
def guessed_limits(planes, bits, n, offsets, plan, k, limits):
    """limits[g] = a starting threshold for query g (see sample_plan), bits + 1 where no guess pays; in parallel."""
    for g in prange(limits.shape[0]):
        limits[g] = _guess_one(planes, bits, n, offsets, plan, k, g)


@njit(nogil=True, cache=True)
def guessed_limits_serial(planes, bits, n, offsets, plan, k, limits):
    """guessed_limits on the calling thread (one query: the thread pool would cost more than it saves)."""
    for g in range(limits.shape[0]):
        limits[g] = _guess_one(planes, bits, n, offsets, plan, k, g)


# -- the scan ---------------------------------------------------------------------------

@njit(inline="always")
def file_under(counted, block, n, u, ext, offset, wide, scratch, g, c, k, bins, cap, cand_d, cand_p, size, counts, cum,
               total):
    """File the codes of ``block`` whose distance lies under the bound (min(u, ext)); returns the new u.

    ``counted``: the block's T planes (_count), d = T + offset. Shared by the
    block scan below and the one-query page scan (dagh.runtime.search.kernels.pages).
    """
    under = _below(counted, min(u, ext) - offset, wide)
    if (block + 1) * BLOCK_CODES > n:  # the gallery's last block: codes past n are not in it
        under = under & _valid(scratch, block, n)
    if any4(under):  # rare once U settles: file the codes under it, in position order
        for p in range(_PLANES):
            store4(scratch, _u(4 * p), counted[p])
        store4(scratch, _u(_MASK), under)
        if _marked(scratch) > k:
            # More than k codes of this block under the bound (the first blocks): a code
            # beyond the block's own k-th smallest cannot be in the top k; do not file it.
            under = under & _below(counted, _kth_smallest(scratch, k) + 1, wide)
            store4(scratch, _u(_MASK), under)
        for lane in range(4):
            mask = scratch[_MASK + lane]
            if not mask:
                continue
            # The lane's T bits, in registers: _accept's stores could alias scratch, which
            # would make the compiler reload all nine per code.
            w0, w1, w2, w3, w4, w5, w6, w7, w8 = (scratch[lane], scratch[4 + lane], scratch[8 + lane],
                                                  scratch[12 + lane], scratch[16 + lane],
                                                  scratch[20 + lane], scratch[24 + lane],
                                                  scratch[28 + lane], scratch[32 + lane])
            while mask:
                b = trailing_zeros64(mask)
                mask &= mask - _u(1)
                t = np.int64(((w0 >> b) & _u(1)) | (((w1 >> b) & _u(1)) << _u(1))
                             | (((w2 >> b) & _u(1)) << _u(2)) | (((w3 >> b) & _u(1)) << _u(3))
                             | (((w4 >> b) & _u(1)) << _u(4)) | (((w5 >> b) & _u(1)) << _u(5))
                             | (((w6 >> b) & _u(1)) << _u(6)) | (((w7 >> b) & _u(1)) << _u(7))
                             | (((w8 >> b) & _u(1)) << _u(8)))
                d = t + offset
                if d < u and d < ext:  # u falls as codes are filed
                    position = block * BLOCK_CODES + lane * 64 + np.int64(b)
                    u = _accept(d, g, c, k, bins, cap, u, cand_d, cand_p, size, counts, cum,
                                total, position)
    return u


@njit(parallel=True, nogil=True, cache=True)
def topk_scan(planes, bits, n, offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p, cand_n):
    """Per chunk c and query g: candidates (cand_d/cand_p[c, g, :cand_n[c, g]]) holding the chunk's top k.

    ``planes`` as in the module docstring (``block_stride(bits)`` planes a
    block), the queries' plans from query_plans, ``chunk`` a multiple of 256,
    ``limits`` each query's starting threshold (guessed_limits; bits + 1 for
    none). Chunks run in parallel and share their thresholds through
    ``shared_u`` exactly as the word-major scan does (see
    dagh.runtime.search.kernels.scan.topk_scan).
    """
    for c in prange(cand_d.shape[0]):
        _scan_chunk(c, planes, bits, n, offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p, cand_n)


@njit(nogil=True, cache=True)
def topk_scan_serial(planes, bits, n, offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p, cand_n):
    """topk_scan on the calling thread: for one chunk, where starting the thread pool costs more than it saves."""
    for c in range(cand_d.shape[0]):
        _scan_chunk(c, planes, bits, n, offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p, cand_n)


@njit(inline="always")
def _scan_chunk(c, planes, bits, n, offsets, plan, k, chunk, start_limits, shared_u, cand_d, cand_p, cand_n):
    """Chunk c against every query: walked in tiles that stay in L1 while every query of the group scans them."""
    bins = bits + 1
    groups, cap = cand_d.shape[1], cand_d.shape[2]
    stride = block_stride(bits)
    m = popcount_planes(bits)
    wide = is_wide(bits)
    tile = max(1, TILE_BYTES // (stride * 32))
    planes_at = address(planes)
    offsets_at = address(offsets.reshape(-1))
    entries = offsets.shape[1]
    lo = c * chunk
    hi = min(n, lo + chunk)
    first_block = lo // BLOCK_CODES
    end_block = (hi + BLOCK_CODES - 1) // BLOCK_CODES
    counts, limit, cum, total, size = _chunk_state(groups, bins)
    limit[:] = start_limits
    scratch = np.empty(_MASK + 4, np.uint64)         # the T planes, then a mask plane
    for tile_start in range(first_block, end_block, tile):
        tile_end = min(end_block, tile_start + tile)
        for g in range(groups):
            u = limit[g]
            ext = _other_chunks_bound(shared_u, c, g, bins)  # for this tile
            length, offset = plan[g, 0], plan[g, 1]
            flip = splat4(~_u(0) if plan[g, 2] else _u(0))
            entry = g * entries
            for block in range(tile_start, tile_end):
                counted = _count(planes_at, block, stride, offsets_at, entry, length, m, flip)
                u = file_under(counted, block, n, u, ext, offset, wide, scratch, g, c, k, bins, cap, cand_d, cand_p,
                               size, counts, cum, total)
            limit[g] = u
            # Published once earned (k candidates at or below it), not while it is a guess; and only when it
            # changed, so the line the other chunks read stays shared in their caches.
            published = u if cum[g] >= k else bins
            if shared_u[c, g] != published:
                shared_u[c, g] = published
    for g in range(groups):
        cand_n[c, g] = size[g]
