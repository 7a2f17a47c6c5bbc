"""Run in a fresh interpreter with NUMBA_ENABLE_CUDASIM=1 (see test_index_gpu.py)."""

import math

import numpy as np

import dagh.runtime.index_gpu as index_gpu
from dagh.runtime.bits import lanes_of_checked, pack_codes
from dagh.runtime.index import HammingIndex

index_gpu.QUERY_GROUP = 2  # several launches for the 3-query cases below

rng = np.random.default_rng(0)
for bits, n, nq, k in ((12, 300, 2, 5), (48, 600, 3, 20), (128, 257, 1, 300), (64, 0, 1, 3)):
    pool = rng.choice([-1, 1], (8, bits))  # few distinct codes: ties
    gallery = pool[rng.integers(0, 8, n)]
    queries = rng.choice([-1, 1], (nq, bits))
    ids = rng.permutation(10 * n + 1)[:n]
    gpu, cpu = HammingIndex(bits, backend="gpu"), HammingIndex(bits, backend="numpy")
    if n:
        gpu.add(gallery, ids)
        cpu.add(gallery, ids)
    for got, want in zip(gpu.search(queries, k), cpu.search(queries, k)):
        assert np.array_equal(got, want), (bits, n, got, want)
    for (gd, gi), (cd, ci) in zip(gpu.range_search(queries, bits // 3), cpu.range_search(queries, bits // 3)):
        assert np.array_equal(gd, cd) and np.array_equal(gi, ci)
# A radius search (k = n inside) sizes each block's candidate list by the block's range, not the gallery.
bits, n = 24, 3000
gallery = rng.choice([-1, 1], (n, bits))
queries = rng.choice([-1, 1], (2, bits))
gpu, cpu = HammingIndex(bits, backend="gpu"), HammingIndex(bits, backend="numpy")
gpu.add(gallery)
cpu.add(gallery)
cand_d = gpu.backend._candidates(gpu._snapshot(), lanes_of_checked(pack_codes(queries), bits), n, 6)[0]
blocks = cand_d.shape[1]
assert blocks > 1 and cand_d.shape[2] == math.ceil(n / blocks), cand_d.shape
for (gd, gi), (cd, ci) in zip(gpu.range_search(queries, 6), cpu.range_search(queries, 6)):
    assert len(cd) and np.array_equal(gd, cd) and np.array_equal(gi, ci)
print("GPU-SIM-OK")
