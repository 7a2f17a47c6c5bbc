"""The GPU backend of HammingIndex: numba-cuda kernels, gallery resident on the device.

Not one warp per query (faiss's GPU flat index leaves a single query on one
SM): the gallery is spread over many blocks per query, so even one query
fills every SM. Four kernels, all parallel, no serial merge:

1. ``block_histograms``: each block XORs and popcounts its contiguous range of
   the gallery (coalesced reads) into a shared-memory histogram of distances
   (0..bits), written out per block;
2. ``block_offsets``: per query and distance, an exclusive scan over the
   blocks: where each block's codes at that distance start among all of them;
3. ``thresholds``: per query, the threshold T (smallest distance with k codes
   at or below it, or the radius) and each distance's first output slot;
4. ``place``: each block walks its range again; a code at d <= T goes to output
   slot first[d] + offset[block, d] + its rank in the block (codes at T past
   the k-th dropped), so results come out in (distance, position) order, ties
   by insertion order, as on the CPU, with no merge of per-block lists.

(A merge of per-block top-k lists, the design before, ran on one GPU thread a
query over blocks x k candidates: ~100k at k = 100 with one query on a
132-SM GPU.) Radius search is the same with T the radius.

numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1) runs these kernels on the CPU,
which is how CI checks their logic.
"""

from __future__ import annotations

import math

import numpy as np

from dagh._optional import require
from dagh.errors import DeviceError
from dagh.runtime.bits import lane_dtype, lanes_of_checked, words_per_code
from dagh.runtime.search.backend import Backend, padded, stack_groups

MAX_BINS = 257          # distances 0..256: codes up to 256 bits on the GPU
THREADS = 256           # threads of the scanning kernels' blocks
SCAN_THREADS = 32       # threads of block_offsets' blocks (one block per query and distance)
QUERY_GROUP = 4096      # queries per launch: the grid's y dimension (<= 65535) and the per-block arrays


cuda = None  # numba.cuda, bound by _kernels(); a module global so the CUDA simulator can swap it


def _kernels(numba_cuda):
    """Compile-on-first-use kernels (defined lazily so importing this module needs no numba).

    The kernels name ``cuda`` and ``distance`` as module globals: numba's CUDA
    simulator replaces a kernel's global ``cuda`` with its own, and cannot
    reach a closure variable.
    """
    global cuda, distance
    cuda = numba_cuda
    from numba import int32

    @cuda.jit(device=True, inline=True)
    def distance(codes, i, queries, q, words):
        d = 0
        for w in range(words):  # word-major gallery: threads of a warp read consecutive words
            d += cuda.popc(codes[w, i] ^ queries[q, w])
        return d

    @cuda.jit(device=True, inline=True)
    def block_range(codes, chunk):
        """(query, block, thread, threads, lo, hi): the launch's grid is blocks x queries, block b of a
        query scanning gallery codes [lo, hi)."""
        b = cuda.blockIdx.x
        lo = b * chunk
        return cuda.blockIdx.y, b, cuda.threadIdx.x, cuda.blockDim.x, lo, min(codes.shape[1], lo + chunk)

    @cuda.jit
    def block_histograms(codes, queries, chunk, hist):
        """hist[q, b, d]: how many codes of block b's range lie at distance d from query q."""
        q, b, tid, nthreads, lo, hi = block_range(codes, chunk)
        words = codes.shape[0]
        local = cuda.shared.array(MAX_BINS, int32)
        for d in range(tid, MAX_BINS, nthreads):
            local[d] = 0
        cuda.syncthreads()
        for i in range(lo + tid, hi, nthreads):
            cuda.atomic.add(local, distance(codes, i, queries, q, words), 1)
        cuda.syncthreads()
        for d in range(tid, hist.shape[2], nthreads):
            hist[q, b, d] = local[d]

    @cuda.jit
    def block_offsets(hist, offsets, totals):
        """offsets[q, b, d] = codes at distance d in blocks before b; totals[q, d] = in all (grid: distances x queries)."""
        d = cuda.blockIdx.x
        q = cuda.blockIdx.y
        tid = cuda.threadIdx.x
        nthreads = cuda.blockDim.x
        blocks = hist.shape[1]
        per = (blocks + nthreads - 1) // nthreads   # each thread scans a run of consecutive blocks
        lo = min(blocks, tid * per)
        hi = min(blocks, lo + per)
        partial = cuda.shared.array(SCAN_THREADS, int32)
        running = 0
        for b in range(lo, hi):
            running += hist[q, b, d]
        partial[tid] = running
        cuda.syncthreads()
        if tid == 0:  # exclusive scan of the runs' sums (SCAN_THREADS of them, in shared memory)
            running = 0
            for t in range(nthreads):
                count = partial[t]
                partial[t] = running
                running += count
            totals[q, d] = running
        cuda.syncthreads()
        running = partial[tid]
        for b in range(lo, hi):
            offsets[q, b, d] = running
            running += hist[q, b, d]

    @cuda.jit
    def thresholds(totals, k, limit, first, cut):
        """Per query: cut = (T, codes taken), T the smallest distance with k codes at or below it
        (at most ``limit``); first[q, d] = the output slot of the first code at distance d <= T."""
        q = cuda.grid(1)
        if q >= totals.shape[0]:
            return
        threshold = min(totals.shape[1] - 1, limit)
        running = 0
        for d in range(threshold + 1):
            first[q, d] = running
            running += totals[q, d]
            if running >= k:
                threshold = d
                break
        cut[q, 0] = threshold
        cut[q, 1] = min(k, running)

    @cuda.jit
    def place(codes, queries, chunk, offsets, first, cut, out_d, out_p):
        """Write each code at distance <= T to its output slot (see the module docstring)."""
        q, b, tid, nthreads, lo, hi = block_range(codes, chunk)
        words = codes.shape[0]
        threshold = cut[q, 0]
        take = cut[q, 1]
        cursor = cuda.shared.array(MAX_BINS, int32)
        tile_d = cuda.shared.array(THREADS, int32)
        selected = cuda.shared.array(1, int32)
        for d in range(tid, threshold + 1, nthreads):
            cursor[d] = first[q, d] + offsets[q, b, d]
        cuda.syncthreads()
        for start in range(lo, hi, nthreads):  # the same trip count in every thread: syncthreads inside
            i = start + tid
            d = -1
            if i < hi:
                d = distance(codes, i, queries, q, words)
                if d > threshold:
                    d = -1
            tile_d[tid] = d
            if tid == 0:
                selected[0] = 0
            cuda.syncthreads()
            if d >= 0:
                selected[0] = 1
            cuda.syncthreads()
            if tid == 0 and selected[0] == 1:  # rare: the tile's few codes, in position order
                for j in range(min(nthreads, hi - start)):
                    dj = tile_d[j]
                    if dj >= 0:
                        slot = cursor[dj]
                        if slot < take:
                            out_d[q, slot] = dj
                            out_p[q, slot] = start + j
                        cursor[dj] = slot + 1
            cuda.syncthreads()

    return block_histograms, block_offsets, thresholds, place


def _device_lanes(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.uint32) if dtype.itemsize < 4 else dtype


class GpuBackend(Backend):
    """HammingIndex backend='gpu': needs numba-cuda and a CUDA GPU (or the CUDA simulator)."""

    def __init__(self, bits: int):
        numba_cuda = require("numba.cuda", extra="gpu", purpose="the GPU Hamming index (backend='gpu')")
        if not numba_cuda.is_available():
            raise DeviceError("backend='gpu': no usable CUDA GPU here (numba.cuda.is_available() is False); "
                              "use backend='cpu'")
        if bits > MAX_BINS - 1:
            raise ValueError(f"the GPU backend handles codes up to {MAX_BINS - 1} bits")
        self.cuda = numba_cuda
        self.bits = bits
        self.kernels = _kernels(numba_cuda)
        try:
            self._sms = numba_cuda.get_current_device().MULTIPROCESSOR_COUNT  # read once, not per search
        except Exception:  # the simulator's device may not say
            self._sms = 4
        self._host_key = None
        self._host_columns = None
        self._device_words = None
        self.last_scan_seconds = None  # GPU time of the last search's kernels (all four)

    def _resident(self, snapshot):
        # The gallery ([words, n], word-major as on the host) stays on the device
        # until the index changes: a new storage array or a new size.
        key = (id(snapshot.columns), snapshot.n)
        if self._host_key != key or self._device_words is None:
            # At least 32-bit lanes on the device (cuda.popc takes 32- and 64-bit integers).
            self._device_words = self.cuda.to_device(
                np.ascontiguousarray(snapshot.columns[:, :snapshot.n], dtype=_device_lanes(snapshot.columns.dtype)))
            self._host_key = key
            self._host_columns = snapshot.columns  # keeps id() from being reused while cached
        return self._device_words

    def scanned_bytes_per_code(self, bits: int) -> float:
        return float(_device_lanes(lane_dtype(bits)).itemsize * words_per_code(bits))

    def _blocks_per_query(self, n: int, nq: int) -> int:
        target = max(1, (self._sms * 8 + nq - 1) // nq)  # fill every SM even for one query
        return max(1, min(target, math.ceil(n / THREADS)))

    def search(self, snapshot, packed, k):
        m = min(k, snapshot.n)
        queries = lanes_of_checked(packed, self.bits)
        parts = []
        for start in range(0, len(queries), QUERY_GROUP):
            d, p, found = self._select(snapshot, queries[start:start + QUERY_GROUP], m, self.bits, m)
            if not np.all(found == m):  # every query has min(k, n) neighbours: anything else is a kernel bug
                raise DeviceError(f"the GPU kernel returned {found.tolist()} neighbours, expected {m} per query")
            parts.append((d, p))
        return padded(np.concatenate([d for d, _ in parts]), np.concatenate([p for _, p in parts]),
                       snapshot.ids, k)

    def within(self, snapshot, queries, radius):
        parts = []
        for start in range(0, len(queries), QUERY_GROUP):
            parts.append(self._select(snapshot, queries[start:start + QUERY_GROUP], snapshot.n,
                                      min(radius, self.bits), None))
        return stack_groups(parts)

    def _select(self, snapshot, queries, k, limit, width):
        """Per query, the (at most k) nearest codes at distance <= limit, in (distance, position) order:
        (distances, positions, counts) on the host. ``width``: the output columns (None: as many as
        the most any query takes, read back from the device between the kernels)."""
        n, nq = snapshot.n, len(queries)
        blocks = self._blocks_per_query(n, nq)
        chunk = math.ceil(n / blocks)
        bins = self.bits + 1
        block_histograms, block_offsets, thresholds, place = self.kernels
        d_codes = self._resident(snapshot)
        d_queries = self.cuda.to_device(np.ascontiguousarray(queries, dtype=_device_lanes(queries.dtype)))
        hist = self.cuda.device_array((nq, blocks, bins), np.int32)
        offsets = self.cuda.device_array((nq, blocks, bins), np.int32)
        totals = self.cuda.device_array((nq, bins), np.int32)
        first = self.cuda.device_array((nq, bins), np.int32)
        cut = self.cuda.device_array((nq, 2), np.int32)
        start, stop = self.cuda.event(), self.cuda.event()
        start.record()
        block_histograms[(blocks, nq), THREADS](d_codes, d_queries, chunk, hist)
        block_offsets[(bins, nq), SCAN_THREADS](hist, offsets, totals)
        thresholds[math.ceil(nq / 64), 64](totals, k, limit, first, cut)
        taken = None
        if width is None:  # read back now (a sync) only when the outputs' width depends on it
            taken = cut.copy_to_host()[:, 1]
            width = int(taken.max(initial=0))
        out_d = self.cuda.device_array((nq, max(1, width)), np.int32)
        out_p = self.cuda.device_array((nq, max(1, width)), np.int64)
        place[(blocks, nq), THREADS](d_codes, d_queries, chunk, offsets, first, cut, out_d, out_p)
        stop.record()
        stop.synchronize()
        self.last_scan_seconds = start.elapsed_time(stop) / 1e3  # all four kernels, by CUDA events
        counts = (cut.copy_to_host()[:, 1] if taken is None else taken).astype(np.int64)
        return out_d.copy_to_host()[:, :width], out_p.copy_to_host()[:, :width], counts
