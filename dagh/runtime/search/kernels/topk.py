"""Candidate lists of the k-nearest scans, and their merge (numba; compiled on first use).

Both scans (bit-sliced, dagh.runtime.search.kernels.bitsliced; word by word,
dagh.runtime.search.kernels.scan) walk their chunk in position order with a running
threshold U (the smallest distance with at least k candidates at or below it)
and file only the codes under it here: (distance, position) appended to a
small list per chunk and query, which is compacted to the chunk's current top
k when it fills. Lists stay in position order, so ties resolve by insertion
order in the final merge.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(inline="always")
def _chunk_state(groups, bins):
    """A chunk's candidate bookkeeping per query: (counts per distance, U, #at or below U, total, list size)."""
    counts = np.zeros((groups, bins + 1), np.int64)
    limit = np.full(groups, bins, np.int64)   # U: accept d < U (U = bits + 1: accept all)
    cum = np.zeros(groups, np.int64)          # #candidates with d <= U, once U <= bits
    total = np.zeros(groups, np.int64)
    size = np.zeros(groups, np.int64)
    return counts, limit, cum, total, size


@njit(inline="always")
def _other_chunks_bound(shared_u, c, g, bins):
    """The bound the other chunks' thresholds set for chunk c and query g (see the scans' docstrings).

    Chunk c' holds k codes at distance <= U'; a later chunk's codes at U' lose the tie to them.
    """
    ext = bins
    for other in range(shared_u.shape[0]):
        if other < c:
            ext = min(ext, shared_u[other, g])
        elif other > c:
            ext = min(ext, shared_u[other, g] + 1)
    return ext


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
        else:
            counts[d] -= 1
    return kept


@njit(inline="always")
def _accept(d, g, c, k, bins, cap, u, cand_d, cand_p, size, counts, cum, total, position):
    """The slow path: file (d, position) as a candidate and lower the threshold; returns the new U."""
    s = size[g]
    if s == cap:
        s = _compact(cand_d[c, g], cand_p[c, g], s, counts[g], u, k)
        # Compaction drops ties at U beyond the k-th: recount the candidates at or below U.
        running = 0
        for dd in range(u + 1):
            running += counts[g, dd]
        cum[g] = running
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
def _merge_one(cand_d, cand_p, cand_n, g, k, hist, out_d, out_p, out_count):
    """Query g's exact top k by (distance, position) from every chunk's candidates; ``hist``: bins + 1 zeros.

    A counting merge, linear in the candidates: a histogram of their distances gives the
    threshold and each distance's first output slot; walking chunks in gallery order (each
    chunk's list is in position order) fills every distance bucket in position order.
    """
    n_chunks = cand_d.shape[0]
    bins = hist.shape[0] - 1
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


@njit(nogil=True, cache=True)
def merge_topk(cand_d, cand_p, cand_n, k, bins, out_d, out_p, out_count):
    """Merge the chunks' candidates (distances < ``bins``) into each query's exact top k (_merge_one)."""
    hist = np.zeros(bins + 1, np.int64)
    for g in range(cand_d.shape[1]):
        hist[:] = 0
        _merge_one(cand_d, cand_p, cand_n, g, k, hist, out_d, out_p, out_count)


@njit(parallel=True, nogil=True, cache=True)
def merge_topk_parallel(cand_d, cand_p, cand_n, k, bins, out_d, out_p, out_count):
    """merge_topk with the queries spread over the threads (a batch: serial, the merge was ~12% of a
    100-query search of 100k 128-bit codes at k = 100)."""
    hists = np.zeros((cand_d.shape[1], bins + 1), np.int64)
    for g in prange(cand_d.shape[1]):
        _merge_one(cand_d, cand_p, cand_n, g, k, hists[g], out_d, out_p, out_count)


@njit(inline="always")
def merge_candidates(cand_d, cand_p, cand_n, k, bins, out_d, out_p, out_count):
    """merge_topk, over the threads for a batch (one query: starting the thread pool costs more than it saves)."""
    if cand_d.shape[1] > 1:
        merge_topk_parallel(cand_d, cand_p, cand_n, k, bins, out_d, out_p, out_count)
    else:
        merge_topk(cand_d, cand_p, cand_n, k, bins, out_d, out_p, out_count)
