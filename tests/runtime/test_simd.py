"""The u64x4 vector type for numba kernels, against numpy on random words."""

import numpy as np
from numba import njit

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


@njit(cache=True)
def _combine(a, b, out, word):
    x = load4(a, 0)
    y = load4(address(b), np.uint64(4))
    store4(out, 0, x ^ y)
    store4(out, 4, x & y)
    store4(out, 8, x | y)
    store4(out, 12, ~x)
    store4(out, 16, splat4(word) ^ x)
    store4(out, 20, splat4(word_at(address(b), np.uint64(1))))
    return any4(x & splat4(np.uint64(0))), any4(x), popcount(word), trailing_zeros64(word)


def test_vector_operations_match_numpy():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2**63, 4, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, 8, dtype=np.uint64)
    out = np.zeros(24, np.uint64)
    word = np.uint64(0b1011000)
    none, some, ones, zeros = _combine(a, b, out, word)
    y = b[4:]
    expected = [a ^ y, a & y, a | y, ~a, np.full(4, word) ^ a, np.full(4, b[1])]
    assert np.array_equal(out.reshape(6, 4), np.stack(expected))
    assert (none, some, ones, zeros) == (False, True, 3, 3)
