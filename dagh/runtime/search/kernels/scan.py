"""numba kernels of the CPU Hamming index (compiled on first use).

The gallery is word-major: ``columns[w, i]`` is word w of code i (a uint64
word per 64 bits of code; codes of up to 16 or 32 bits in one uint16 or uint32
lane, more codes per vector), so each word of consecutive codes is one
contiguous run, and XOR + popcount + min over a block of codes vectorizes
(vpshufb popcount on AVX2, cnt on NEON). Only the first ``n`` columns are the
gallery; the rest is capacity for appends.

k-nearest search is one parallel pass over gallery chunks with a running
threshold (dagh.runtime.search.kernels.topk files the candidates and merges them): over the
bit-sliced copy of the gallery for codes of up to 255 bits
(dagh.runtime.search.kernels.bitsliced), over these words for longer codes (topk_scan here).
``knn_bitsliced`` and ``knn_words`` run either in one compiled call. Radius search (scan + offsets_for +
collect) counts a histogram of distances, then writes the selected codes
straight to their final place. All are exact and order ties by gallery position.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils
from numba.extending import intrinsic

from dagh.runtime.search.kernels import bitsliced as _bitsliced
from dagh.runtime.search.kernels import pages as _pages
from dagh.runtime.search.kernels.simd import popcount, trailing_zeros64
from dagh.runtime.search.kernels.topk import _accept, _chunk_state, _other_chunks_bound, merge_candidates

# Indices in the hot loops are unsigned: numba wraps negative indices of signed
# ones, and that per-element select keeps LLVM from vectorizing the loads (the
# scan ran 2x slower with signed indices).
_u = np.uint64


@njit(inline="always")
def _distance(columns, i, queries, g):
    """Hamming distance of gallery code i to query g (scalar)."""
    d = np.int64(0)
    for w in range(columns.shape[0]):
        d += np.int64(popcount(columns[w, _u(i)] ^ queries[g, w]))
    return d


# -- radius search: a distance histogram per chunk, then a placing pass --------------

@njit(parallel=True, nogil=True, cache=True)
def scan(columns, n, queries, distances, hist, chunk):
    """distances[g, i] = hamming(code i, queries[g]); hist[c, g, d] counts per chunk c."""
    groups = queries.shape[0]
    n_chunks = hist.shape[0]
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(n, lo + chunk)
        for g in range(groups):
            for i in range(lo, hi):
                d = _distance(columns, i, queries, g)
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
def xor_popcount_stream(columns, n, query):
    """The machine's XOR+popcount streaming rate: the sum of all distances, nothing kept.

    The same gallery words and chunking as the search, and the tightest loop
    there is (XOR, popcount, add; the compiler vectorizes it): the ceiling a
    Hamming scan over these words can reach.
    """
    words = columns.shape[0]
    n_chunks = 16
    chunk = (n + n_chunks - 1) // n_chunks
    partial = np.zeros(n_chunks, np.uint64)
    for c in prange(n_chunks):
        lo, hi = c * chunk, min(n, (c + 1) * chunk)
        acc = np.uint64(0)
        for w in range(words):
            row = columns[w]
            q = query[w]
            for i in range(lo, hi):
                acc += popcount(row[_u(i)] ^ q)
        partial[c] = acc
    return np.int64(partial.sum())


# -- k-nearest search: one pass with a running threshold ----------------------------
#
# Per chunk and query, blocks of codes go through XOR + popcount + min, compared
# with a running threshold U (the smallest distance with at least k candidates at
# or below it); only a block holding a code with d < U takes the slow path, which
# appends (distance, position) to a small candidate list and lowers U. When the
# list fills, it is compacted to the chunk's current top k. Candidates stay in
# position order, so ties resolve by insertion order in the final merge.

BLOCK = 64          # codes per branch-free block of the fast path (one bit each in a uint64 mask)
TILE_BYTES = 16384  # gallery words per tile: stays in L1 while every query of the group scans it


@njit(inline="always")
def _under(acc, bound):
    """A uint64 mask with bit j set where acc[j] < bound (acc holds one block's distances)."""
    mask = np.uint64(0)
    for j in range(BLOCK):
        mask |= np.uint64(acc[_u(j)] < bound) << np.uint64(j)
    return mask


@njit(inline="always")
def _block_words(columns, base, queries, g, acc):
    """acc[j] = distance of code base + j to query g, for a block (per-word passes, vectorized); returns their minimum."""
    row = columns[0]
    q = queries[g, 0]
    for j in range(BLOCK):
        acc[_u(j)] = np.int32(popcount(row[_u(base + j)] ^ q))
    for w in range(1, columns.shape[0]):
        row = columns[w]
        q = queries[g, w]
        for j in range(BLOCK):
            acc[_u(j)] += np.int32(popcount(row[_u(base + j)] ^ q))
    low = np.int32(1 << 30)
    for j in range(BLOCK):
        low = min(low, acc[_u(j)])
    return low


@njit(parallel=True, nogil=True, cache=True)
def topk_scan(columns, n, queries, k, bins, chunk, shared_u, cand_d, cand_p, cand_n):
    """Per chunk c and query g: candidates (cand_d/cand_p[c, g, :cand_n[c, g]]) holding the chunk's top k.

    ``columns`` [words, >= n] and ``queries`` [groups, words] of one unsigned
    type (used for codes over 255 bits: uint64 words). The chunk is walked in
    tiles that stay in L1 while every query of the group scans them, so the
    gallery is read from memory once per group, not per query.

    Chunks share their thresholds through ``shared_u`` [chunks, groups] (start
    at ``bins``): chunk c' holds k codes at distance <= U' (its k-th smallest so
    far), so no code at U' or beyond in a later chunk, nor beyond U' in an
    earlier one (ties go to the earlier position), can be in the top k. A chunk
    skips those codes too; a stale read only costs time, never exactness, since
    thresholds only fall.
    """
    words = columns.shape[0]
    groups = queries.shape[0]
    n_chunks, _, cap = cand_d.shape
    tile = max(BLOCK, (TILE_BYTES // (columns.itemsize * words)) // BLOCK * BLOCK)
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(n, lo + chunk)
        counts, limit, cum, total, size = _chunk_state(groups, bins)
        acc = np.empty(BLOCK, np.int32)
        for start in range(lo, hi, tile):
            end = min(hi, start + tile)
            full = start + (end - start) // BLOCK * BLOCK
            for g in range(groups):
                u = limit[g]
                ext = _other_chunks_bound(shared_u, c, g, bins)  # for this tile
                for base in range(start, full, BLOCK):
                    low = _block_words(columns, base, queries, g, acc)
                    bound = min(u, ext)
                    if low < bound:  # rare once U settles: file the block's codes under it
                        # A bit per code under the bound (vectorized), then only those codes, in order.
                        mask = _under(acc, bound)
                        while mask:
                            j = trailing_zeros64(mask)
                            mask &= mask - np.uint64(1)
                            d = np.int64(acc[j])
                            if d < u and d < ext:  # u falls as codes are filed
                                u = _accept(d, g, c, k, bins, cap, u, cand_d, cand_p, size, counts, cum, total,
                                            base + np.int64(j))
                for i in range(full, end):  # fewer than BLOCK codes at the end of the chunk
                    d = _distance(columns, i, queries, g)
                    if d < u and d < ext:
                        u = _accept(d, g, c, k, bins, cap, u, cand_d, cand_p, size, counts, cum, total, i)
                limit[g] = u
                if shared_u[c, g] != u:  # only when changed: the other chunks' copies of the line stay valid
                    shared_u[c, g] = u
        for g in range(groups):
            cand_n[c, g] = size[g]


# -- k-nearest search: one compiled call each, whole (per-call Python overhead bounds small galleries) ----

@intrinsic
def _thread_count(typingctx):
    """numba's thread count for the calling thread (numba.get_num_threads), read in compiled code.

    Through the C function numba's threading layer registers for its own
    parallel loops (``get_num_threads``, an int), which a search's kernels
    link anyway: calling numba.get_num_threads inside compiled code would
    embed a ctypes pointer, which numba cannot cache, and from Python the
    call costs ~2 us cold, a twentieth of a one-query search of 100k codes.
    """
    numba.get_num_threads()  # start the threading layer: it registers the symbol

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "get_num_threads")
        return builder.sext(builder.call(fn, []), ir.IntType(64))

    return numba.types.int64(), codegen


@njit(nogil=True, cache=True)
def chunk_codes(n, min_chunk, tasks_per_thread, threads):
    """Gallery codes per parallel task: ``tasks_per_thread`` tasks for each of ``threads`` threads (the index
    uses 1: fewer, larger chunks measured faster; tests raise it to cover many chunks), none under
    ``min_chunk``; a whole number of bit-sliced blocks (256 codes)."""
    per_task = max(min_chunk, -(-n // max(1, threads * tasks_per_thread)))
    return -(-per_task // _bitsliced.BLOCK_CODES) * _bitsliced.BLOCK_CODES


@njit(inline="always")
def _search_state(n, chunk, k, nq, group):
    """(chunks, candidate list capacity, positions and counts of the result, queries per pass).

    Passes are evened out: 100 queries as 7 x 15, not 6 x 16 + 4."""
    passes = (nq + group - 1) // group
    return ((n + chunk - 1) // chunk, max(4 * k, 64), np.empty((nq, k), np.int64), np.empty(nq, np.int64),
            (nq + passes - 1) // passes)


@njit(inline="always")
def _pass_state(n_chunks, queries, cap, bins):
    """A pass's candidate lists (distances, positions, sizes) and shared thresholds, per chunk and query."""
    cand_d = np.empty((n_chunks, queries, cap), np.int32)
    cand_p = np.empty((n_chunks, queries, cap), np.int64)
    cand_n = np.zeros((n_chunks, queries), np.int64)
    shared_u = np.full((n_chunks, queries), bins, np.int64)
    return cand_d, cand_p, cand_n, shared_u


@njit(inline="always")
def _finish(ids, positions, counts, out_d, out_i):
    """Gallery positions -> ids; -1 in both outputs past each query's count."""
    for g in range(positions.shape[0]):
        for s in range(positions.shape[1]):
            if s < counts[g]:
                out_i[g, s] = ids[positions[g, s]]
            else:
                out_d[g, s] = -1
                out_i[g, s] = -1


@njit(inline="always")
def _bitsliced_pass(planes, pages, n, packed, k, bits, chunk, n_chunks, cap, guess, out_d, positions, counts):
    """One pass of knn_bitsliced over the gallery for the queries ``packed``: their top k, merged.

    A pass of one query reads the page copy where there is one (dagh.runtime.search.kernels.pages)."""
    cand_d, cand_p, cand_n, shared_u = _pass_state(n_chunks, packed.shape[0], cap, bits + 1)
    batch = packed.shape[0] > 1  # per-query work over the threads; one query: no thread pool to start for it
    offsets, plan = _bitsliced.query_plans_parallel(packed, bits) if batch else _bitsliced.query_plans(packed, bits)
    limits = np.full(packed.shape[0], bits + 1, np.int64)
    if guess:
        if batch:
            _bitsliced.guessed_limits(planes, bits, n, offsets, plan, k, limits)
        else:
            _bitsliced.guessed_limits_serial(planes, bits, n, offsets, plan, k, limits)
    if not batch and pages.size:
        page_offsets = offsets[0] * np.uint64(_pages.SUPER)
        if n_chunks > 1:
            _pages.topk_scan(pages, bits, n, page_offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p, cand_n)
        else:
            _pages.topk_scan_serial(pages, bits, n, page_offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p,
                                    cand_n)
    elif n_chunks > 1:
        _bitsliced.topk_scan(planes, bits, n, offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p, cand_n)
    else:  # one chunk: starting the thread pool would cost more than it saves
        _bitsliced.topk_scan_serial(planes, bits, n, offsets, plan, k, chunk, limits, shared_u, cand_d, cand_p,
                                    cand_n)
    merge_candidates(cand_d, cand_p, cand_n, k, bits + 1, out_d, positions, counts)


@njit(nogil=True, cache=True)
def knn_bitsliced(planes, pages, n, ids, packed, k, bits, min_chunk, tasks_per_thread, group, out_d, out_i):
    """Exact k-nearest search over the bit-sliced copy (dagh.runtime.search.kernels.bitsliced), codes of up to 255 bits.

    ``pages``: the page copy of the same planes (dagh.runtime.search.kernels.pages) that
    one-query passes read, or an empty array where the index keeps none.
    ``packed``: the queries as packed uint8 rows. Fills ``out_d`` (int32
    [nq, k]) and ``out_i`` (int64 [nq, k]) with distances and ids, -1 past n
    (outputs come in: numba returning arrays costs ~1 us each). Chunks of
    chunk_codes(n, min_chunk, tasks_per_thread, threads) codes in parallel, ``group`` queries per
    pass over the gallery, then the merge and the id lookup, all in this one
    call. Each query starts from a threshold guessed from a sample
    (dagh.runtime.search.kernels.bitsliced.guessed_limits); a query whose guess proves too
    low (fewer than k codes under it) is searched again without one.

    Note for development: numba's on-disk cache of this function embeds the
    kernels it calls but is invalidated only by changes to this file; after
    editing bitsliced.py, pages.py, topk.py or simd.py alone, delete
    dagh/runtime/search/kernels/__pycache__/*.nbi (an installed upgrade replaces every file,
    so users are not affected).
    """
    chunk = chunk_codes(n, min_chunk, tasks_per_thread, _thread_count())
    n_chunks, cap, positions, counts, group = _search_state(n, chunk, k, packed.shape[0], group)
    nq = packed.shape[0]
    for start in range(0, nq, group):
        end = min(nq, start + group)
        _bitsliced_pass(planes, pages, n, packed[start:end], k, bits, chunk, n_chunks, cap, True,
                        out_d[start:end], positions[start:end], counts[start:end])
    missed = 0
    for g in range(nq):
        missed += counts[g] < min(k, n)
    if missed:  # a guess fell below the k-th distance: those queries again, from no threshold
        redo = np.nonzero(counts < min(k, n))[0]
        again_d = np.empty((redo.size, k), np.int32)
        again_p = np.empty((redo.size, k), np.int64)
        again_n = np.empty(redo.size, np.int64)
        _bitsliced_pass(planes, pages, n, packed[redo], k, bits, chunk, n_chunks, cap, False, again_d, again_p,
                        again_n)
        for r in range(redo.size):
            out_d[redo[r]] = again_d[r]
            positions[redo[r]] = again_p[r]
            counts[redo[r]] = again_n[r]
    _finish(ids, positions, counts, out_d, out_i)


@njit(nogil=True, cache=True)
def knn_words(columns, n, ids, queries, k, bins, min_chunk, tasks_per_thread, group, out_d, out_i):
    """knn_bitsliced over the word-major ``columns`` (codes over 255 bits), queries as lanes."""
    chunk = chunk_codes(n, min_chunk, tasks_per_thread, _thread_count())
    n_chunks, cap, positions, counts, group = _search_state(n, chunk, k, queries.shape[0], group)
    nq = queries.shape[0]
    for start in range(0, nq, group):
        end = min(nq, start + group)
        cand_d, cand_p, cand_n, shared_u = _pass_state(n_chunks, end - start, cap, bins)
        topk_scan(columns, n, np.ascontiguousarray(queries[start:end]), k, bins, chunk, shared_u, cand_d, cand_p,
                  cand_n)
        merge_candidates(cand_d, cand_p, cand_n, k, bins, out_d[start:end], positions[start:end], counts[start:end])
    _finish(ids, positions, counts, out_d, out_i)
