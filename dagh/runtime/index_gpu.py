"""The GPU backend of HammingIndex: a numba-cuda kernel, gallery resident on the device.

Not one warp per query (faiss's GPU flat index leaves a single query on one
SM): the gallery is spread over many blocks per query, so even one query
fills every SM. Each block scans a contiguous range of the gallery:

1. every thread XORs and popcounts codes (coalesced reads) into a
   shared-memory histogram of distances (distances are 0..bits);
2. thread 0 finds the block's threshold T (k-th smallest distance) and the
   offset of each distance bucket <= T;
3. the block walks its range again in tiles; codes under the threshold are
   written to the block's sorted candidate list (distance, then position),
   thread 0 filing a tile's few selected codes in order so ties stay in
   insertion order.

A small merge kernel then takes, per query, the blocks' lists in distance
order and block order (a counting merge, linear in the candidates): the exact
top k, ties by insertion order, as on the CPU.

numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1) runs these kernels on the CPU,
which is how CI checks their logic.
"""

from __future__ import annotations

import math

import numpy as np

from dagh._optional import require
from dagh.errors import DeviceError
from dagh.runtime.bits import lane_dtype, lanes_of_checked, words_per_code
from dagh.runtime.index import Backend, _padded

MAX_BINS = 257          # distances 0..256: codes up to 256 bits on the GPU
THREADS = 256
QUERY_GROUP = 4096      # queries per launch: the grid's y dimension (<= 65535) and the candidate memory


cuda = None  # numba.cuda, bound by _kernels(); a module global so the CUDA simulator can swap it


def _kernels(numba_cuda):
    """Compile-on-first-use kernels (defined lazily so importing this module needs no numba).

    The kernels name ``cuda`` and ``distance`` as module globals: numba's CUDA
    simulator replaces a kernel's global ``cuda`` with its own, and cannot
    reach a closure variable.
    """
    global cuda, distance
    cuda = numba_cuda
    from numba import int32, int64, uint64

    @cuda.jit(device=True, inline=True)
    def distance(codes, i, queries, q, words):
        d = 0
        for w in range(words):  # word-major gallery: threads of a warp read consecutive words
            d += cuda.popc(codes[w, i] ^ queries[q, w])
        return d

    @cuda.jit
    def block_topk(codes, queries, k, limit, chunk, cand_d, cand_p, cand_n):
        """Per block: its range's codes at distance <= limit, at most the k nearest, sorted."""
        q = cuda.blockIdx.y
        b = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nthreads = cuda.blockDim.x
        words = codes.shape[0]
        n = codes.shape[1]
        bins = words * 64 + 1 if words * 64 + 1 < MAX_BINS else MAX_BINS
        lo = b * chunk
        hi = min(n, lo + chunk)
        hist = cuda.shared.array(MAX_BINS, int32)
        cursor = cuda.shared.array(MAX_BINS, int32)
        tile_d = cuda.shared.array(THREADS, int32)
        state = cuda.shared.array(2, int32)  # [threshold, any selected in tile]
        for d in range(tid, MAX_BINS, nthreads):
            hist[d] = 0
        cuda.syncthreads()
        for i in range(lo + tid, hi, nthreads):
            cuda.atomic.add(hist, distance(codes, i, queries, q, words), 1)
        cuda.syncthreads()
        if tid == 0:
            running = 0
            threshold = min(bins - 1, limit)
            for d in range(threshold + 1):
                cursor[d] = running
                running += hist[d]
                if running >= k:
                    threshold = d
                    break
            state[0] = threshold
            cand_n[q, b] = min(k, running)
        cuda.syncthreads()
        threshold = state[0]
        for start in range(lo, hi, nthreads):
            i = start + tid
            d = -1
            if i < hi:
                d = distance(codes, i, queries, q, words)
                if d > threshold:
                    d = -1
            tile_d[tid] = d
            if tid == 0:
                state[1] = 0
            cuda.syncthreads()
            if d >= 0:
                state[1] = 1
            cuda.syncthreads()
            if tid == 0 and state[1] == 1:  # rare: file the tile's selected codes in order
                for j in range(min(nthreads, hi - start)):
                    dj = tile_d[j]
                    if dj >= 0:
                        slot = cursor[dj]
                        if slot < cand_d.shape[2]:  # min(k, chunk): a block never has more
                            cand_d[q, b, slot] = dj
                            cand_p[q, b, slot] = start + j
                        cursor[dj] = slot + 1
            cuda.syncthreads()

    @cuda.jit
    def merge(cand_d, cand_p, cand_n, k, out_d, out_p, out_n, slots):
        """One thread per query: a counting merge of the blocks' sorted lists, linear in the
        candidates (histogram -> first slot per distance -> fill in block order)."""
        q = cuda.grid(1)
        if q >= cand_d.shape[0]:
            return
        blocks = cand_d.shape[1]
        for d in range(MAX_BINS):
            slots[q, d] = 0
        total = 0
        for b in range(blocks):
            for s in range(cand_n[q, b]):
                slots[q, cand_d[q, b, s]] += 1
            total += cand_n[q, b]
        take = min(k, total)
        running = 0
        threshold = MAX_BINS - 1
        for d in range(MAX_BINS):
            start = running
            running += slots[q, d]
            slots[q, d] = start
            if running >= take:
                threshold = d
                break
        for b in range(blocks):  # blocks in gallery order, each list in (distance, position) order
            for s in range(cand_n[q, b]):
                d = cand_d[q, b, s]
                if d <= threshold:
                    slot = slots[q, d]
                    if slot < take:
                        out_d[q, slot] = d
                        out_p[q, slot] = cand_p[q, b, s]
                    slots[q, d] = slot + 1
        out_n[q] = take

    return block_topk, merge, int64, uint64


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
        self.block_topk, self.merge_kernel, _, _ = _kernels(numba_cuda)
        self._host_key = None
        self._host_columns = None
        self._device_words = None
        self.last_scan_seconds = None  # GPU time of the last search's kernels (scan + merge)

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
        try:
            sms = self.cuda.get_current_device().MULTIPROCESSOR_COUNT
        except Exception:
            sms = 4
        target = max(1, (sms * 8 + nq - 1) // nq)  # fill every SM even for one query
        return max(1, min(target, math.ceil(n / THREADS)))

    def search(self, snapshot, packed, k):
        m = min(k, snapshot.n)
        queries = lanes_of_checked(packed, self.bits)
        parts = []
        for start in range(0, len(queries), QUERY_GROUP):
            candidates = self._candidates(snapshot, queries[start:start + QUERY_GROUP], m, self.bits)
            d, p, found = self._merged(*candidates, m)
            if not np.all(found == m):  # every query has min(k, n) neighbours: anything else is a kernel bug
                raise DeviceError(f"the GPU kernel returned {found.tolist()} neighbours, expected {m} per query")
            parts.append((d[:, :m], p[:, :m]))
        return _padded(np.concatenate([d for d, _ in parts]), np.concatenate([p for _, p in parts]),
                       snapshot.ids, k)

    def _candidates(self, snapshot, queries, k, limit):
        """Run block_topk: per query and block, the block's codes at distance <= limit, at most k, sorted
        (device arrays cand_d, cand_p, cand_n, and the start event for the timing).

        A block's list holds at most min(k, chunk) codes, so a radius search (k = n)
        needs about n slots a query, not n per block."""
        n, nq = snapshot.n, len(queries)
        blocks = self._blocks_per_query(n, nq)
        chunk = math.ceil(n / blocks)
        cap = max(1, min(k, chunk))
        d_codes = self._resident(snapshot)
        d_queries = self.cuda.to_device(np.ascontiguousarray(queries, dtype=_device_lanes(queries.dtype)))
        cand_d = self.cuda.device_array((nq, blocks, cap), np.int32)
        cand_p = self.cuda.device_array((nq, blocks, cap), np.int64)
        cand_n = self.cuda.to_device(np.zeros((nq, blocks), np.int32))
        start = self.cuda.event()
        start.record()
        self.block_topk[(blocks, nq), THREADS](d_codes, d_queries, k, limit, chunk, cand_d, cand_p, cand_n)
        return cand_d, cand_p, cand_n, start

    def _merged(self, cand_d, cand_p, cand_n, start, k):
        """Run merge: per query, the k nearest of the blocks' candidates (fewer where they hold fewer).

        ``start``: the event recorded before block_topk, so last_scan_seconds spans both kernels."""
        nq = cand_d.shape[0]
        out_d = self.cuda.device_array((nq, max(1, k)), np.int32)
        out_p = self.cuda.device_array((nq, max(1, k)), np.int64)
        out_n = self.cuda.device_array(nq, np.int32)
        slots = self.cuda.device_array((nq, MAX_BINS), np.int64)
        self.merge_kernel[math.ceil(nq / 64), 64](cand_d, cand_p, cand_n, k, out_d, out_p, out_n, slots)
        stop = self.cuda.event()
        stop.record()
        stop.synchronize()
        self.last_scan_seconds = start.elapsed_time(stop) / 1e3  # both kernels, by CUDA events
        return out_d.copy_to_host(), out_p.copy_to_host(), out_n.copy_to_host().astype(np.int64)

    def within(self, snapshot, queries, radius):
        # The k-NN kernel cut at the radius (codes beyond it never filed), then a merge sized to the
        # largest count: memory follows the codes found, not queries x gallery.
        parts = []
        for start in range(0, len(queries), QUERY_GROUP):
            candidates = self._candidates(snapshot, queries[start:start + QUERY_GROUP], snapshot.n,
                                          min(radius, self.bits))
            found = candidates[2].copy_to_host().sum(axis=1)
            parts.append(self._merged(*candidates, int(found.max(initial=0))))
        width = max(d.shape[1] for d, _, _ in parts)
        pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=-1)  # noqa: E731
        return (np.concatenate([pad(d) for d, _, _ in parts]), np.concatenate([pad(p) for _, p, _ in parts]),
                np.concatenate([n for _, _, n in parts]))
