"""The CPU backend's numba kernels (compiled on first use, cached on disk).

``scan`` drives a search (chunks over threads, one compiled call per search);
``bitsliced`` holds the bit-sliced block copy and its counting; ``pages`` the
page copy for one-query searches of large galleries; ``topk`` files candidates
and merges the chunks' results; ``simd`` is the 4 x uint64 vector type they are
written in. Importing any of them imports numba.
"""
