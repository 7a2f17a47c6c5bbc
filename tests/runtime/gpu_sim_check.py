"""Run in a fresh interpreter with NUMBA_ENABLE_CUDASIM=1 (see test_index_gpu.py)."""

import numpy as np

import dagh.runtime.search.gpu as index_gpu
from dagh.runtime.bits import lanes_of_checked, pack_codes
from dagh.runtime.search.index import HammingIndex

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
# Radius search: outputs as wide as the most codes any query has within the radius, not the gallery.
bits, n, radius = 24, 1500, 6
gallery = rng.choice([-1, 1], (n, bits))
queries = rng.choice([-1, 1], (2, bits))
gpu, cpu = HammingIndex(bits, backend="gpu"), HammingIndex(bits, backend="numpy")
gpu.add(gallery)
cpu.add(gallery)
assert gpu.backend._blocks_per_query(n, len(queries)) > 1
d, p, counts = gpu.backend._select(gpu._snapshot(), lanes_of_checked(pack_codes(queries), bits), n, radius, None)
assert 0 < d.shape[1] == counts.max() < n, (d.shape, counts)
for g, (cd, ci) in enumerate(cpu.range_search(queries, radius)):
    assert counts[g] == len(cd) and np.array_equal(d[g, :counts[g]], cd) and np.array_equal(p[g, :counts[g]], ci)
print("GPU-SIM-OK")
