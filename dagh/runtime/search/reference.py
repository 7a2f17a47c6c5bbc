"""Reference backends of HammingIndex: plain numpy (the tests' oracle) and faiss (the benchmarks' rival)."""

from __future__ import annotations

import numpy as np

from dagh._optional import require
from dagh.runtime.bits import lanes_of_checked
from dagh.runtime.search.backend import Backend, padded


class NumpyBackend(Backend):
    """Plain numpy: XOR, popcount (np.bitwise_count), stable sort. The reference."""

    def __init__(self, bits: int):
        self.bits = bits

    def distances(self, words, queries):
        return np.bitwise_count(queries[:, None, :] ^ words[None, :, :]).sum(axis=2, dtype=np.int32)

    def search(self, snapshot, packed, k):
        d = self.distances(snapshot.rows, lanes_of_checked(packed, self.bits))
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        return padded(np.take_along_axis(d, order, axis=1), order, snapshot.ids, k)

    def within(self, snapshot, queries, radius):
        d = self.distances(snapshot.rows, queries)
        order = np.argsort(d, axis=1, kind="stable")
        sorted_d = np.take_along_axis(d, order, axis=1)
        return sorted_d, order, (sorted_d <= radius).sum(axis=1)


class FaissBackend(Backend):
    """faiss IndexBinaryFlat, as the reference in benchmarks (codes padded to whole words)."""

    def __init__(self, bits: int):
        self.faiss = require("faiss", extra="faiss", purpose="backend='faiss'")
        self.bits = bits

    def _index(self, words):
        index = self.faiss.IndexBinaryFlat(words.shape[1] * words.dtype.itemsize * 8)
        index.add(np.ascontiguousarray(words).view(np.uint8).reshape(len(words), -1))
        return index

    def search(self, snapshot, packed, k):
        queries = lanes_of_checked(packed, self.bits)
        words = snapshot.rows
        index = self._index(words)
        d, i = index.search(np.ascontiguousarray(queries).view(np.uint8).reshape(len(queries), -1),
                            min(k, snapshot.n))
        # faiss orders ties by its own heap, not by insertion: re-sort ties stably.
        key = d.astype(np.int64) * (len(words) + 1) + i
        order = np.argsort(key, axis=1, kind="stable")
        return padded(np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1), snapshot.ids, k)

    def within(self, snapshot, queries, radius):
        return NumpyBackend(self.bits).within(snapshot, queries, radius)
