"""numba kernels of the CPU Hamming index (compiled on first use).

Search is exact and deterministic in two parallel passes over gallery chunks:

1. scan: for every code and every query of a group, popcount(code XOR query)
   -> a distance byte, counted in a per-chunk histogram (distances are integers
   0..bits, so selection needs no heap);
2. collect: from the histograms, the threshold distance T of each query (the
   k-th smallest) and, per chunk and distance, the output offset; each chunk
   then writes its codes with d < T, and those with d == T while slots remain,
   straight to their final place. Chunks are contiguous and processed in
   order, so ties come out in insertion order.

A group of queries shares each gallery word while it is in a register (tiling:
the gallery is read once per group, not once per query).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic


@intrinsic
def popcount64(typingctx, value):
    """LLVM ctpop on a uint64 (one POPCNT instruction on x86-64 and aarch64)."""
    signature = types.uint64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return signature, codegen


@njit(parallel=True, nogil=True, cache=True)
def scan(codes, queries, distances, hist, chunk):
    """distances[g, i] = hamming(codes[i], queries[g]); hist[c, g, d] counts per chunk c."""
    n, words = codes.shape
    groups = queries.shape[0]
    n_chunks = hist.shape[0]
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(n, lo + chunk)
        for i in range(lo, hi):
            if words == 1:
                word = codes[i, 0]
                for g in range(groups):
                    d = np.int64(popcount64(word ^ queries[g, 0]))
                    distances[g, i] = d
                    hist[c, g, d] += 1
            else:
                for g in range(groups):
                    d = 0
                    for w in range(words):
                        d += np.int64(popcount64(codes[i, w] ^ queries[g, w]))
                    distances[g, i] = d
                    hist[c, g, d] += 1


@njit(nogil=True, cache=True)
def offsets_for(hist, limits):
    """Per query: threshold T, and offsets[c, g, d] where chunk c writes distance d."""
    n_chunks, groups, bins = hist.shape
    thresholds = np.full(groups, -1, np.int64)
    counts = np.zeros(groups, np.int64)
    offsets = np.zeros((n_chunks, groups, bins), np.int64)
    for g in range(groups):
        total = np.zeros(bins, np.int64)
        for c in range(n_chunks):
            for d in range(bins):
                total[d] += hist[c, g, d]
        seen = 0
        threshold = bins - 1
        for d in range(bins):
            if seen + total[d] >= limits[g]:
                threshold = d
                break
            seen += total[d]
        thresholds[g] = threshold
        start = 0
        for d in range(threshold + 1):
            running = start
            for c in range(n_chunks):
                offsets[c, g, d] = running
                running += hist[c, g, d]
            start += total[d]
        counts[g] = min(limits[g], start)
    return thresholds, offsets, counts


@njit(parallel=True, nogil=True, cache=True)
def collect(distances, offsets, thresholds, limits, chunk, out_distances, out_positions):
    """Write each query's selected (distance, position) pairs in (distance, position) order."""
    groups, n = distances.shape
    n_chunks = offsets.shape[0]
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(n, lo + chunk)
        cursor = offsets[c].copy()
        for i in range(lo, hi):
            for g in range(groups):
                d = distances[g, i]
                if d <= thresholds[g]:
                    slot = cursor[g, d]
                    if slot < limits[g]:
                        out_distances[g, slot] = d
                        out_positions[g, slot] = i
                    cursor[g, d] = slot + 1


@njit(parallel=True, nogil=True, cache=True)
def xor_popcount_stream(codes, query):
    """The machine's XOR+popcount streaming rate: the sum of all distances, nothing kept.

    The same chunking as the search, with a branch-free inner loop the compiler
    can vectorize: the ceiling a Hamming scan over these words can reach.
    """
    n, words = codes.shape
    flat = codes.ravel()
    n_chunks = 16
    chunk = (n + n_chunks - 1) // n_chunks
    partial = np.zeros(n_chunks, np.int64)
    for c in prange(n_chunks):
        acc = np.int64(0)
        lo, hi = c * chunk, min(n, (c + 1) * chunk)
        if words == 1:
            q0 = query[0]
            for i in range(lo, hi):
                acc += np.int64(popcount64(flat[i] ^ q0))
        elif words == 2:
            q0, q1 = query[0], query[1]
            for i in range(lo, hi):
                acc += np.int64(popcount64(flat[2 * i] ^ q0)) + np.int64(popcount64(flat[2 * i + 1] ^ q1))
        else:
            for i in range(lo, hi):
                for w in range(words):
                    acc += np.int64(popcount64(flat[i * words + w] ^ query[w]))
        partial[c] = acc
    return partial.sum()


# -- k-nearest search: one pass with a running threshold ----------------------------
#
# Per chunk and query, codes stream through XOR + popcount + one compare with a
# running threshold U (the smallest distance with at least k candidates at or
# below it); only codes with d < U take the slow path, which appends
# (distance, position) to a small candidate list and lowers U. When the list
# fills, it is compacted to the chunk's current top k. Candidates stay in
# position order, so ties resolve by insertion order in the final merge.

BLOCK = 16  # codes per branch-free block of the fast path
TILE = 512  # codes per tile: 4 KB of words, reused from L1 by every query of the group


@njit(inline="always")
def _compact(cand_d, cand_p, size, counts, u, k):
    """Keep candidates with d < u, and the first (k - #(d < u)) with d == u."""
    below = 0
    for d in range(u):
        below += counts[d]
    room_at_u = k - below
    kept = 0
    for j in range(size):
        d = cand_d[j]
        if d < u or (d == u and room_at_u > 0):
            if d == u:
                room_at_u -= 1
            cand_d[kept] = d
            cand_p[kept] = cand_p[j]
            kept += 1
        elif d <= u:
            counts[d] -= 1
        else:
            counts[d] -= 1
    return kept


@njit(inline="always")
def _accept(d, g, c, k, bins, cap, u, cand_d, cand_p, size, counts, cum, total, position):
    """The slow path: file (d, position) as a candidate and lower the threshold; returns the new U."""
    s = size[g]
    if s == cap:
        s = _compact(cand_d[c, g], cand_p[c, g], s, counts[g], u, k)
    cand_d[c, g, s] = d
    cand_p[c, g, s] = position
    size[g] = s + 1
    counts[g, d] += 1
    total[g] += 1
    if u == bins:
        if total[g] >= k:  # first time k candidates: find U
            running = 0
            for dd in range(bins):
                running += counts[g, dd]
                if running >= k:
                    u = dd
                    cum[g] = running
                    break
    else:
        cum[g] += 1
    if u < bins:
        while u > 0 and cum[g] - counts[g, u] >= k:
            cum[g] -= counts[g, u]
            u -= 1
    return u


@njit(inline="always")
def _block_slow_1w(flat, i, q0, u, g, c, k, bins, cap, cand_d, cand_p, size, counts, cum, total):
    """Revisit one block of 1-word codes for query g: file the codes under the threshold."""
    for j in range(BLOCK):
        dj = np.int64(popcount64(flat[i + j] ^ q0))
        if dj < u:
            u = _accept(dj, g, c, k, bins, cap, u, cand_d, cand_p, size, counts, cum, total, i + j)
    return u


@njit(inline="always")
def _block_slow_2w(flat, i, q0, q1, u, g, c, k, bins, cap, cand_d, cand_p, size, counts, cum, total):
    """Revisit one block of 2-word codes for query g."""
    for j in range(BLOCK):
        b = 2 * (i + j)
        dj = np.int64(popcount64(flat[b] ^ q0)) + np.int64(popcount64(flat[b + 1] ^ q1))
        if dj < u:
            u = _accept(dj, g, c, k, bins, cap, u, cand_d, cand_p, size, counts, cum, total, i + j)
    return u


@njit(parallel=True, nogil=True, cache=True)
def topk_scan(codes, queries, k, bins, chunk, cand_d, cand_p, cand_n):
    """Per chunk c and query g: candidates (cand_d/cand_p[c, g, :cand_n[c, g]]) holding the chunk's top k.

    ``codes`` [n, words] and ``queries`` [groups, words] uint64; the loops for 1
    and 2 words are written out so the compiler keeps the query in registers.
    """
    n, words = codes.shape
    groups = queries.shape[0]
    n_chunks, _, cap = cand_d.shape
    flat = codes.ravel()
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(n, lo + chunk)
        counts = np.zeros((groups, bins + 1), np.int64)
        limit = np.full(groups, bins, np.int64)   # U: accept d < U (U = bits + 1: accept all)
        cum = np.zeros(groups, np.int64)          # #candidates with d <= U, once U <= bits
        total = np.zeros(groups, np.int64)
        size = np.zeros(groups, np.int64)
        for start in range(lo, hi, TILE):
            end = min(hi, start + TILE)
            first_single = 0
            if words == 1:
                # Register blocking: four queries (two for 2-word codes) share every loaded code word.
                first_single = groups - groups % 4
                for g in range(0, first_single, 4):
                    qa, qb, qc, qd = queries[g, 0], queries[g + 1, 0], queries[g + 2, 0], queries[g + 3, 0]
                    ua, ub, uc, ud = limit[g], limit[g + 1], limit[g + 2], limit[g + 3]
                    i = start
                    while i + BLOCK <= end:
                        la = lb = lc = ld = bins
                        for j in range(BLOCK):
                            w = flat[i + j]
                            la = min(la, np.int64(popcount64(w ^ qa)))
                            lb = min(lb, np.int64(popcount64(w ^ qb)))
                            lc = min(lc, np.int64(popcount64(w ^ qc)))
                            ld = min(ld, np.int64(popcount64(w ^ qd)))
                        if la < ua:
                            ua = _block_slow_1w(flat, i, qa, ua, g, c, k, bins, cap, cand_d, cand_p, size,
                                                counts, cum, total)
                        if lb < ub:
                            ub = _block_slow_1w(flat, i, qb, ub, g + 1, c, k, bins, cap, cand_d, cand_p, size,
                                                counts, cum, total)
                        if lc < uc:
                            uc = _block_slow_1w(flat, i, qc, uc, g + 2, c, k, bins, cap, cand_d, cand_p, size,
                                                counts, cum, total)
                        if ld < ud:
                            ud = _block_slow_1w(flat, i, qd, ud, g + 3, c, k, bins, cap, cand_d, cand_p, size,
                                                counts, cum, total)
                        i += BLOCK
                    for gg, qq, uu in ((g, qa, ua), (g + 1, qb, ub), (g + 2, qc, uc), (g + 3, qd, ud)):
                        for tail in range(i, end):
                            d = np.int64(popcount64(flat[tail] ^ qq))
                            if d < uu:
                                uu = _accept(d, gg, c, k, bins, cap, uu, cand_d, cand_p, size, counts, cum,
                                             total, tail)
                        limit[gg] = uu
            elif words == 2:
                first_single = groups - groups % 2
                for g in range(0, first_single, 2):
                    qa0, qa1, qb0, qb1 = queries[g, 0], queries[g, 1], queries[g + 1, 0], queries[g + 1, 1]
                    ua, ub = limit[g], limit[g + 1]
                    i = start
                    while i + BLOCK <= end:
                        la = lb = bins
                        for j in range(BLOCK):
                            w0 = flat[2 * (i + j)]
                            w1 = flat[2 * (i + j) + 1]
                            la = min(la, np.int64(popcount64(w0 ^ qa0)) + np.int64(popcount64(w1 ^ qa1)))
                            lb = min(lb, np.int64(popcount64(w0 ^ qb0)) + np.int64(popcount64(w1 ^ qb1)))
                        if la < ua:
                            ua = _block_slow_2w(flat, i, qa0, qa1, ua, g, c, k, bins, cap, cand_d, cand_p, size,
                                                counts, cum, total)
                        if lb < ub:
                            ub = _block_slow_2w(flat, i, qb0, qb1, ub, g + 1, c, k, bins, cap, cand_d, cand_p,
                                                size, counts, cum, total)
                        i += BLOCK
                    for gg, q0, q1, uu in ((g, qa0, qa1, ua), (g + 1, qb0, qb1, ub)):
                        for tail in range(i, end):
                            d = np.int64(popcount64(flat[2 * tail] ^ q0)) + np.int64(popcount64(flat[2 * tail + 1] ^ q1))
                            if d < uu:
                                uu = _accept(d, gg, c, k, bins, cap, uu, cand_d, cand_p, size, counts, cum,
                                             total, tail)
                        limit[gg] = uu
            for g in range(first_single, groups):
                u = limit[g]
                if words == 1:
                    q0 = queries[g, 0]
                    i = start
                    # Blocks of BLOCK codes: branch-free distances and their minimum
                    # (the compiler vectorizes this loop); the rare block with a code
                    # under the threshold is revisited on the slow path.
                    while i + BLOCK <= end:
                        # Four independent minima: no serial dependency between codes.
                        low0 = low1 = low2 = low3 = bins
                        for j in range(0, BLOCK, 4):
                            low0 = min(low0, np.int64(popcount64(flat[i + j] ^ q0)))
                            low1 = min(low1, np.int64(popcount64(flat[i + j + 1] ^ q0)))
                            low2 = min(low2, np.int64(popcount64(flat[i + j + 2] ^ q0)))
                            low3 = min(low3, np.int64(popcount64(flat[i + j + 3] ^ q0)))
                        low = min(min(low0, low1), min(low2, low3))
                        if low < u:  # recompute the block's distances on the slow path
                            for j in range(BLOCK):
                                dj = np.int64(popcount64(flat[i + j] ^ q0))
                                if dj < u:
                                    u = _accept(dj, g, c, k, bins, cap, u, cand_d, cand_p, size, counts,
                                                cum, total, i + j)
                        i += BLOCK
                    for tail in range(i, end):
                        d = np.int64(popcount64(flat[tail] ^ q0))
                        if d < u:
                            u = _accept(d, g, c, k, bins, cap, u, cand_d, cand_p, size, counts, cum, total, tail)
                elif words == 2:
                    q0 = queries[g, 0]
                    q1 = queries[g, 1]
                    i = start
                    while i + BLOCK <= end:
                        low0 = low1 = bins
                        for j in range(0, BLOCK, 2):
                            b = 2 * (i + j)
                            low0 = min(low0, np.int64(popcount64(flat[b] ^ q0)) + np.int64(popcount64(flat[b + 1] ^ q1)))
                            low1 = min(low1, np.int64(popcount64(flat[b + 2] ^ q0))
                                       + np.int64(popcount64(flat[b + 3] ^ q1)))
                        low = min(low0, low1)
                        if low < u:
                            for j in range(BLOCK):
                                dj = (np.int64(popcount64(flat[2 * (i + j)] ^ q0))
                                      + np.int64(popcount64(flat[2 * (i + j) + 1] ^ q1)))
                                if dj < u:
                                    u = _accept(dj, g, c, k, bins, cap, u, cand_d, cand_p, size, counts,
                                                cum, total, i + j)
                        i += BLOCK
                    for tail in range(i, end):
                        d = (np.int64(popcount64(flat[2 * tail] ^ q0))
                             + np.int64(popcount64(flat[2 * tail + 1] ^ q1)))
                        if d < u:
                            u = _accept(d, g, c, k, bins, cap, u, cand_d, cand_p, size, counts, cum, total, tail)
                else:
                    for i in range(start, end):
                        d = np.int64(0)
                        base = i * words
                        for w in range(words):
                            d += np.int64(popcount64(flat[base + w] ^ queries[g, w]))
                        if d < u:
                            u = _accept(d, g, c, k, bins, cap, u, cand_d, cand_p, size, counts, cum, total, i)
                limit[g] = u
        for g in range(groups):
            cand_n[c, g] = size[g]


@njit(nogil=True, cache=True)
def merge_topk(cand_d, cand_p, cand_n, k, n, out_d, out_p, out_count):
    """Merge the chunks' candidates into each query's exact top k by (distance, position).

    A counting merge, linear in the candidates: a histogram of their distances gives the
    threshold and each distance's first output slot; walking chunks in gallery order (each
    chunk's list is in position order) fills every distance bucket in position order.
    """
    n_chunks, groups, cap = cand_d.shape
    bins = 0
    for c in range(n_chunks):
        for g in range(groups):
            for s in range(cand_n[c, g]):
                bins = max(bins, np.int64(cand_d[c, g, s]) + 1)
    hist = np.zeros(bins + 1, np.int64)
    for g in range(groups):
        hist[:] = 0
        m = 0
        for c in range(n_chunks):
            for s in range(cand_n[c, g]):
                hist[cand_d[c, g, s]] += 1
            m += cand_n[c, g]
        take = min(k, m)
        threshold = bins
        running = 0
        for d in range(bins):
            start = running
            running += hist[d]
            hist[d] = start  # now the first output slot of distance d
            if running >= take:
                threshold = d
                break
        for c in range(n_chunks):
            for s in range(cand_n[c, g]):
                d = cand_d[c, g, s]
                if d <= threshold:
                    slot = hist[d]
                    if slot < take:
                        out_d[g, slot] = d
                        out_p[g, slot] = cand_p[c, g, s]
                    hist[d] = slot + 1
        out_count[g] = take
