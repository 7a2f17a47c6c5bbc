"""Layout study for the bit-sliced scan: a block's planes together (the index's) vs each plane in pages of its own.

    python benchmarks/plane_layout.py                  # 128 bits, N = 100k, 1M, 8M, then the index at 1M (~1.5 min)
    python benchmarks/plane_layout.py --n 1e6 --nq 15 --tile 4

Why this exists: a one-query search only needs the planes where the query has
its rarer bit value (dagh.runtime.search.kernels.bitsliced: about half of them), yet from
memory it costs as much as reading every plane, because the index keeps a
block's planes together and the hardware prefetchers fetch the whole block
(Zen 3 here: skipping the second half of every block saved nothing). Giving
each plane of 128 blocks its own 4 KB page ("pages") lets a scan leave the
other pages unread; the price is a different order of work: one query counts
8 planes at a time over many blocks (per-block count planes kept in memory),
and a batch copies each tile back into the block layout before its queries
scan it.

Both sides run the real counting helpers of dagh.runtime.search.kernels.bitsliced on random
planes (the selection after the count is left out: it is the same for both),
with the same threads, in alternating turns; the ratio is blocks / pages time
(> 1: pages faster). Both layouts hold the same planes, and the script stops
with an error if they count a different number of blocks under the bound.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from numba import njit, prange, set_num_threads

from dagh.runtime.search.kernels import bitsliced as B
from dagh.runtime.search.kernels.pages import SUPER, _count_group, load_counted
from dagh.runtime.search.kernels.simd import address, any4, load4, splat4, store4

BOUND = 20           # a threshold in T units, so the compare runs; hits are counted, not filed
_u = np.uint64


@njit(parallel=True, nogil=True)
def blocks_scan(planes, n_blocks, offsets, stride, m, tile, hits):
    """Block layout: each query counts each block of a tile (reused from L1 by the group's queries)."""
    planes_at, offsets_at = address(planes), address(offsets.reshape(-1))
    queries, entries = offsets.shape
    chunks = hits.shape[0]
    per = -(-n_blocks // chunks)
    for c in prange(chunks):
        found = 0
        flip = splat4(_u(0))
        for start in range(c * per, min(n_blocks, (c + 1) * per), tile):
            for g in range(queries):
                for b in range(start, min(start + tile, (c + 1) * per, n_blocks)):
                    counted = B._count(planes_at, b, stride, offsets_at, g * entries, entries, m, flip)
                    found += any4(B._below(counted, BOUND, True))
        hits[c] = found


@njit(parallel=True, nogil=True)
def pages_scan(planes, n_blocks, offsets, stride, m, tile, hits, scratch):
    """Page layout: one query counts from the pages; a batch copies each tile into the block layout first."""
    planes_at, offsets_at = address(planes), address(offsets.reshape(-1))
    queries, entries = offsets.shape
    chunks = hits.shape[0]
    groups = -(-n_blocks // SUPER)
    per = -(-groups // chunks)
    for c in prange(chunks):
        found = 0
        flip = splat4(_u(0))
        mine = scratch[c]
        mine_at = address(mine)
        for group in range(c * per, min(groups, (c + 1) * per)):
            in_group = min(SUPER, n_blocks - group * SUPER)
            group_base = _u(group * stride * SUPER * 4)
            for first in range(0, in_group, tile):
                count = min(tile, in_group - first)
                if queries == 1:  # the index's own page counting (dagh.runtime.search.kernels.pages)
                    _count_group(planes_at, group_base, first, count, offsets_at, entries, m, flip, mine)
                    for t in range(count):
                        found += any4(B._below(load_counted(mine_at, t), BOUND, True))
                    continue
                for s in range(stride):  # the tile back into the block layout
                    source = group_base + _u(s * SUPER * 4 + first * 4)
                    for t in range(count):
                        store4(mine, _u((t * stride + s) * 4), load4(planes_at, source + _u(t * 4)))
                for g in range(queries):
                    for t in range(count):
                        counted = B._count(mine_at, t, stride, offsets_at, g * entries, entries, m, flip)
                        found += any4(B._below(counted, BOUND, True))
        hits[c] = found


def to_pages(block_planes, n_blocks, stride):
    """The same planes in the page layout: group, slot, block within the group, lane."""
    groups = -(-n_blocks // SUPER)
    padded = np.zeros((groups * SUPER, stride, 4), np.uint64)
    padded[:n_blocks] = block_planes.reshape(n_blocks, stride, 4)
    return np.ascontiguousarray(padded.reshape(groups, SUPER, stride, 4).transpose(0, 2, 1, 3)).reshape(-1)


def plane_lists(rng, queries, bits, m):
    """Per query: as many code-bit slots as a query's plan lists (half its bits, padded to 8), sorted."""
    listed = min(bits, int(B.plan_entries(bits)))
    return np.stack([np.sort(rng.choice(np.arange(m, m + bits), listed, replace=False)) for _ in range(queries)])


def timed(competitors: dict, turns: int, calls: int) -> dict:
    import time

    seconds = {name: [] for name in competitors}
    for fn in competitors.values():
        fn()
    for _ in range(turns):
        for name, fn in competitors.items():
            for _ in range(calls):
                t0 = time.perf_counter()
                fn()
                seconds[name].append(time.perf_counter() - t0)
    return {name: float(np.median(v)) for name, v in seconds.items()}


def index_rows(sizes, bits, threads, rounds: int = 8) -> None:
    """The whole search: HammingIndex one-query searches with its page copy and without (forced off).

    Warm: searches back to back, the gallery left in the caches by the last one.
    Cold: a 64 MB buffer read before each search (untimed), as a camera app's
    other work between two faces would: the gallery comes from memory.
    """
    import time

    from dagh.runtime.bits import pack_codes
    from dagh.runtime.search.index import HammingIndex

    rng = np.random.default_rng(1)
    flush = np.ones(8 << 20, np.uint64)
    print(f"\nHammingIndex, {bits} bits, one query, {threads} threads; µs a search (median); ratio = blocks / pages")
    print(f"{'N':>9} {'k':>4} {'caches':>6} | {'blocks':>7} {'pages':>7} | {'ratio':>6}")
    for n in sizes:
        codes = pack_codes(rng.integers(0, 2, (n, bits), dtype=np.int8))
        queries = pack_codes(rng.integers(0, 2, (50, bits), dtype=np.int8))
        indexes = {}
        for layout, threshold in (("blocks", 1 << 62), ("pages", 0)):
            indexes[layout] = HammingIndex(bits)
            indexes[layout].backend.pages_min_codes = threshold
            indexes[layout].add(codes)
        for k in (1, 10, 100):
            results = [indexes[layout].search(queries[:5], k) for layout in indexes]
            if not all(np.array_equal(a, b) for a, b in zip(*results)):
                raise SystemExit(f"the layouts' searches disagree (N={n}, k={k})")
            for caches in ("warm", "cold"):
                seconds = {layout: [] for layout in indexes}
                for _ in range(rounds):
                    for layout, index in indexes.items():
                        index.search(queries[:1], k)
                        for i in range(10):
                            if caches == "cold":
                                flush.sum()
                            t0 = time.perf_counter()
                            index.search(queries[i:i + 1], k)
                            seconds[layout].append(time.perf_counter() - t0)
                us = {layout: 1e6 * float(np.median(v)) for layout, v in seconds.items()}
                print(f"{n:>9} {k:>4} {caches:>6} | {us['blocks']:>7.0f} {us['pages']:>7.0f} | "
                      f"{us['blocks'] / us['pages']:>5.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1e5,1e6,8e6", help="gallery sizes, comma-separated")
    parser.add_argument("--bits", type=int, default=128)
    parser.add_argument("--nq", default="1,15", help="queries per pass (15: the index's 100-query batches)")
    parser.add_argument("--tile", type=int, default=32, help="blocks a batch copies back at a time (pages)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--index", default="1e6", help="gallery sizes for the whole-search rows ('' for none)")
    args = parser.parse_args()
    set_num_threads(args.threads)
    bits, stride, m = args.bits, int(B.block_stride(args.bits)), int(B.popcount_planes(args.bits))
    rng = np.random.default_rng(0)
    print(f"{args.bits} bits, {args.threads} threads; ns per code and query (lower is better); "
          "ratio = blocks / pages")
    print(f"{'N':>9} {'nq':>3} | {'blocks':>7} {'pages':>7} | {'ratio':>6}")
    for n in (int(float(v)) for v in args.n.split(",")):
        n_blocks = -(-n // B.BLOCK_CODES)
        block_planes = rng.integers(0, 2**63, n_blocks * stride * 4, dtype=np.uint64)
        page_planes = to_pages(block_planes, n_blocks, stride)
        hits = np.zeros(args.threads, np.int64)
        for nq in (int(v) for v in args.nq.split(",")):
            slots = plane_lists(rng, nq, bits, m).astype(np.uint64)
            block_tile = max(1, B.TILE_BYTES // (stride * 32))
            page_tile = args.tile if nq > 1 else SUPER
            scratch = np.zeros((args.threads, max(page_tile * stride, SUPER * 9) * 4), np.uint64)
            single_offsets = slots * _u(4 * SUPER) if nq == 1 else slots * _u(4)
            competitors = {
                "blocks": lambda: blocks_scan(block_planes, n_blocks, slots * _u(4), stride, m, block_tile, hits),
                "pages": lambda: pages_scan(page_planes, n_blocks, single_offsets, stride, m, page_tile, hits,
                                            scratch),
            }
            under = {}
            for name, scan in competitors.items():
                scan()
                under[name] = int(hits.sum())
            if under["blocks"] != under["pages"]:
                raise SystemExit(f"the layouts disagree: {under['blocks']} blocks under the bound from blocks, "
                                 f"{under['pages']} from pages (N={n}, nq={nq})")
            times = timed(competitors, turns=6, calls=max(2, int(2e6 // (n * nq))))
            per = lambda name: 1e9 * times[name] / (n * nq)  # noqa: E731
            print(f"{n:>9} {nq:>3} | {per('blocks'):>7.3f} {per('pages'):>7.3f} | "
                  f"{times['blocks'] / times['pages']:>5.2f}x")
    if args.index:
        index_rows([int(float(v)) for v in args.index.split(",")], bits, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
