"""Hamming search, side by side: HammingIndex (CPU, numba) vs faiss IndexBinaryFlat vs a numpy scan.

    python benchmarks/hamming_search.py                     # the full grid (several minutes)
    python benchmarks/hamming_search.py --n 100000 --bits 48 --k 10 --nq 1

For every (gallery size N, code bits, k, queries per batch nq) it times each
competitor on the same random codes, with the same number of threads, in
turns (five rounds of a fifth of the budget each, so a slow phase of a
shared host hits all alike), and prints queries/s and the ratio of HammingIndex to each. It also measures the
machine's own XOR+popcount streaming rate over the same gallery words and
reports the single-query scan rate of HammingIndex as a share of it (the
whole search call, Python included, against a bare compiled loop over the
gallery's bytes as the scan keeps them); where a one-query search reads the
page copy (dagh.runtime.search.kernels.pages), which leaves about half of those bytes
untouched, also against a loop over only the bytes it touches.

faiss gets codes at their natural byte length (ceil(bits/8) bytes), as a user
would add them ("faiss"), and, for lengths that are not whole 64-bit words,
also zero-padded to them ("faiss-pad": the 12..48-bit codes then take faiss's
fast 8-byte path instead of its generic one). HammingIndex scans codes of up to
255 bits bit-sliced (dagh.runtime.search.kernels.bitsliced), longer ones as 64-bit words.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from dagh.eval.latency import measure
from dagh.runtime.bits import pack_codes, to_words
from dagh.runtime.search.index import HammingIndex


def ints(text: str) -> list[int]:
    return [int(float(v)) for v in text.split(",")]


def timed_together(competitors: dict, budget: float, turns: int = 5, max_calls: int = 20_000) -> dict:
    """Median seconds per call of each competitor, timed in turns of ``budget / turns`` seconds each.

    Interleaved, so a slow phase of a shared host (other tenants' load comes and
    goes within seconds) hits every competitor of a row alike instead of
    whichever happened to run then. Turns, not single calls: faiss's and numba's
    OpenMP pools each spin a while after a parallel region, and alternating
    every call would set them fighting over the cores. Each turn starts with an
    untimed call and lasts its full time for every competitor: a cap of 40
    calls a turn (earlier) gave a fast competitor a window of 1-2 ms right after
    the others had emptied the caches (100k 128-bit codes, one query: 15-20k
    q/s in 40-call windows, 18-25k in full turns, faiss unchanged).
    ``max_calls`` only bounds the samples kept.
    """
    samples = {name: [] for name in competitors}
    for _ in range(turns):
        for name, fn in competitors.items():
            samples[name].extend(measure(fn, warmup=1, duration=budget / turns, max_iterations=max_calls // turns))
    return {name: float(np.median(times)) / 1e3 for name, times in samples.items()}


def numpy_search(words: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The plain numpy scan: XOR, popcount, partial sort; chunked over queries."""
    out = []
    for q in queries:
        d = np.bitwise_count(words ^ q).sum(axis=1, dtype=np.int32) if words.shape[1] > 1 else \
            np.bitwise_count(words[:, 0] ^ q[0]).astype(np.int32)
        top = np.argpartition(d, k - 1)[:k] if k < len(d) else np.arange(len(d))
        out.append(top[np.lexsort((top, d[top]))])
    return np.stack(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="100000,1000000", type=ints)
    parser.add_argument("--bits", default="12,24,36,48,64,128", type=ints)
    parser.add_argument("--k", default="1,10,100", type=ints)
    parser.add_argument("--nq", default="1,100", type=ints)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--budget", type=float, default=0.4, help="seconds of timing per measurement")
    parser.add_argument("--no-numpy", action="store_true", help="skip the (slow) numpy scan")
    args = parser.parse_args()

    import numba

    numba.set_num_threads(args.threads)
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        faiss = None
        print("faiss is not installed: its column is skipped (pip install faiss-cpu)", file=sys.stderr)
    from dagh.runtime.search.kernels import scan as _numba_kernels

    rng = np.random.default_rng(0)
    print(f"{os.cpu_count()} cores, {args.threads} threads; queries/s (higher is better); "
          "ratios = HammingIndex / competitor")
    header = (f"{'N':>8} {'bits':>4} {'k':>4} {'nq':>4} | {'HammingIndex':>12} {'faiss':>9} {'faiss-pad':>9} "
              f"{'numpy':>8} | {'vs faiss':>8} {'vs pad':>7} {'vs numpy':>8}")
    print(header)
    print("-" * len(header))
    worst_vs_faiss = {}
    worst_vs_padded = {}
    stream_share = {}
    touched_share = {}
    for n in args.n:
        for bits in args.bits:
            codes = pack_codes(rng.integers(0, 2, (n, bits), dtype=np.int8))
            words = to_words(codes, bits)
            index = HammingIndex(bits)
            index.add(codes)
            flat = padded = None
            if faiss is not None:
                flat = faiss.IndexBinaryFlat(codes.shape[1] * 8)
                flat.add(codes)
                if bits % 64:
                    padded = faiss.IndexBinaryFlat(words.shape[1] * 64)
                    padded.add(words.view(np.uint8))
            # The machine's own XOR+popcount rate over the gallery's bytes as the scan keeps them (the
            # bit-sliced copy for codes up to 255 bits; else the words), read as 64-bit words: the
            # ceiling of a scan that reads them all. Where a one-query scan reads a page copy
            # (dagh.runtime.search.kernels.pages) it touches fewer bytes: the rate over only those ("touched") too.
            # Both timed in turns with the k=1 single query; the touched stream reads a prefix of the words.
            whole = -(-int(n * index.scanned_bytes_per_code) // 8)  # 2.25 bytes a code at 12 bits
            touched = -(-int(n * index.one_query_bytes_per_code) // 8)
            stream_words = rng.integers(0, 2**63, (1, whole), dtype=np.uint64)
            streams = {"stream": whole, **({"stream-touched": touched} if touched < whole else {})}
            for k in args.k:
                for nq in args.nq:
                    queries = pack_codes(rng.integers(0, 2, (nq, bits), dtype=np.int8))
                    qwords = to_words(queries, bits)
                    qbytes = qwords.view(np.uint8)
                    competitors = {"ours": lambda: index.search(queries, k)}
                    if flat is not None:
                        competitors["faiss"] = lambda: flat.search(queries, k)
                    if padded is not None:
                        competitors["faiss-pad"] = lambda: padded.search(qbytes, k)
                    if not args.no_numpy and (nq == 1 or n <= 100_000):
                        competitors["numpy"] = lambda: numpy_search(words, qwords, k)
                    if nq == 1 and k == 1:
                        for name, count in streams.items():
                            competitors[name] = (lambda c: lambda: _numba_kernels.xor_popcount_stream(
                                stream_words, c, words[0, :1]))(count)
                    times = timed_together(competitors, args.budget)
                    ours, theirs, theirs_padded, plain = (times.get(name) for name in
                                                          ("ours", "faiss", "faiss-pad", "numpy"))
                    qps = lambda s: nq / s if s else float("nan")  # noqa: E731
                    ratio = lambda s: s / ours if s else float("nan")  # noqa: E731
                    row = (f"{n:>8} {bits:>4} {k:>4} {nq:>4} | {qps(ours):>12.1f} {qps(theirs):>9.1f} "
                           f"{qps(theirs_padded):>9.1f} {qps(plain):>8.1f} | {ratio(theirs):>7.2f}x "
                           f"{ratio(theirs_padded):>6.2f}x {ratio(plain):>7.2f}x")
                    print(row, flush=True)
                    if theirs:
                        cell = f"N={n} k={k} nq={nq}"
                        worst_vs_faiss[bits] = min(worst_vs_faiss.get(bits, (np.inf, "")), (theirs / ours, cell))
                        fastest = min(theirs, theirs_padded) if theirs_padded else theirs
                        worst_vs_padded[bits] = min(worst_vs_padded.get(bits, (np.inf, "")), (fastest / ours, cell))
                    if "stream" in times:
                        stream_share[(n, bits)] = times["stream"] / ours
                    if "stream-touched" in times:
                        touched_share[(n, bits)] = times["stream-touched"] / ours
    if worst_vs_faiss:
        print("\nworst HammingIndex/faiss throughput ratio per code length: "
              + ", ".join(f"{b} bits {r:.2f}x ({cell})" for b, (r, cell) in sorted(worst_vs_faiss.items())))
        print("the same against faiss's faster of natural and padded codes: "
              + ", ".join(f"{b} bits {r:.2f}x ({cell})" for b, (r, cell) in sorted(worst_vs_padded.items())))
    print("single-query (k=1) scan as a share of the XOR+popcount streaming rate over the same gallery bytes: "
          + ", ".join(f"N={n} {b} bits {100 * s:.0f}%" for (n, b), s in sorted(stream_share.items())))
    if touched_share:
        print("the same over only the bytes a one-query scan of the page copy touches: "
              + ", ".join(f"N={n} {b} bits {100 * s:.0f}%" for (n, b), s in sorted(touched_share.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
