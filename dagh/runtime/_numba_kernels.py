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
                    d = popcount64(word ^ queries[g, 0])
                    distances[g, i] = d
                    hist[c, g, d] += 1
            else:
                for g in range(groups):
                    d = 0
                    for w in range(words):
                        d += popcount64(codes[i, w] ^ queries[g, w])
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
    """The machine's raw XOR+popcount streaming rate: sum of distances, nothing kept."""
    n, words = codes.shape
    total = 0
    for i in prange(n):
        for w in range(words):
            total += popcount64(codes[i, w] ^ query[w])
    return total


def warm_up() -> None:
    """Compile the kernels for the common dtypes (first call otherwise pays for it)."""
    codes = np.zeros((4, 1), np.uint64)
    queries = np.zeros((1, 1), np.uint64)
    for dtype in (np.uint8, np.uint16):
        distances = np.zeros((1, 4), dtype)
        hist = np.zeros((1, 1, 65), np.int64)
        scan(codes, queries, distances, hist, 4)
        limits = np.ones(1, np.int64)
        thresholds, offsets, _ = offsets_for(hist, limits)
        collect(distances, offsets, thresholds, limits, 4, np.zeros((1, 1), np.int32), np.zeros((1, 1), np.int64))
