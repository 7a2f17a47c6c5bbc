"""GPU Hamming search on a real GPU: agreement with the CPU index, and throughput.

    python benchmarks/hamming_gpu.py                  # needs numba-cuda and a CUDA GPU
    python benchmarks/hamming_gpu.py --n 10000000 --bits 48 --nq 1,100 --k 10

For every (gallery size N, code bits, queries per batch nq, k) on the same
random codes: the GPU index's results must equal the CPU index's exactly
(distances and ids, ties by insertion order), then both are timed side by side.
Printed per row: GPU kernel time (CUDA events: all four kernels), GPU end-to-end
queries/s (queries up, results down), GB/s of codes scanned by the kernels
(nq x N x bytes per code / kernel time; each code is read twice, histogram
then selection), the CPU index's queries/s with every core, and the ratio.

With NUMBA_ENABLE_CUDASIM=1 and tiny sizes it runs in numba's CUDA simulator
(timings meaningless): how CI checks this script before a GPU is lent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from dagh.errors import DaghError
from dagh.eval.latency import measure
from dagh.fileio import atomic_write_text
from dagh.runtime.bits import pack_codes
from dagh.runtime.search.index import HammingIndex


def ints(text: str) -> list[int]:
    return [int(float(v)) for v in text.split(",")]


def best_seconds(fn, budget: float, at_least: int) -> float:
    """The fastest of at least ``at_least`` calls (after a warm-up, where more than one) and ``budget`` seconds."""
    samples = measure(fn, warmup=1 if at_least > 1 else 0, iterations=at_least)
    if budget > 0:
        samples = np.concatenate([samples, measure(fn, warmup=0, duration=budget, max_iterations=50)])
    return float(samples.min()) / 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1000000,10000000", type=ints, help="gallery sizes")
    parser.add_argument("--bits", default="12,48,64,128", type=ints)
    parser.add_argument("--nq", default="1,100", type=ints, help="queries per search call")
    parser.add_argument("--k", default="10,100", type=ints)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timing per measurement")
    parser.add_argument("--out", help="also write the rows as JSON to this file")
    args = parser.parse_args()

    try:
        from numba import cuda
    except ImportError:
        print("numba is not installed: pip install 'dagh[gpu]'", file=sys.stderr)
        return 2
    if not cuda.is_available():
        print("no usable CUDA GPU here (numba.cuda.is_available() is False): this benchmark needs one",
              file=sys.stderr)
        return 2
    simulated = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    device = "CUDA simulator" if simulated else cuda.get_current_device().name
    device = device.decode() if isinstance(device, bytes) else device
    print(f"GPU: {device}; CPU: {os.cpu_count()} cores" + ("  (simulated: timings are meaningless)" if simulated else ""))
    min_calls = 1 if simulated else 3  # the simulator takes seconds per call: time once
    header = (f"{'N':>9} {'bits':>4} {'nq':>4} {'k':>4} | {'kernel ms':>9} {'GPU q/s':>10} {'GB/s':>7} | "
              f"{'CPU q/s':>10} | {'GPU/CPU':>7}")
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    rows = []
    for n in args.n:
        for bits in args.bits:
            codes = pack_codes(rng.integers(0, 2, (n, bits), dtype=np.int8))
            gpu, cpu = HammingIndex(bits, backend="gpu"), HammingIndex(bits)
            gpu.add(codes)
            cpu.add(codes)
            code_bytes = gpu.scanned_bytes_per_code
            for nq in args.nq:
                queries = pack_codes(rng.integers(0, 2, (nq, bits), dtype=np.int8))
                for k in args.k:
                    got, want = gpu.search(queries, k), cpu.search(queries, k)
                    if not (np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])):
                        print(f"MISMATCH: GPU and CPU results differ at N={n} bits={bits} nq={nq} k={k}")
                        return 1
                    gpu_s = best_seconds(lambda: gpu.search(queries, k), args.budget, min_calls)
                    kernel_s = gpu.backend.last_scan_seconds or float("nan")
                    cpu_s = best_seconds(lambda: cpu.search(queries, k), args.budget, min_calls)
                    gbps = nq * n * code_bytes / kernel_s / 1e9 if kernel_s > 0 else float("nan")
                    row = {"n": n, "bits": bits, "nq": nq, "k": k, "kernel_ms": kernel_s * 1e3,
                           "gpu_qps": nq / gpu_s, "gb_per_s": gbps, "cpu_qps": nq / cpu_s, "agree": True}
                    rows.append(row)
                    print(f"{n:>9} {bits:>4} {nq:>4} {k:>4} | {row['kernel_ms']:>9.3f} {row['gpu_qps']:>10.1f} "
                          f"{gbps:>7.1f} | {row['cpu_qps']:>10.1f} | {cpu_s / gpu_s:>6.2f}x", flush=True)
    print(f"\nall {len(rows)} configurations: GPU results equal the CPU index's")
    if args.out:
        atomic_write_text(args.out, json.dumps({"device": device, "simulated": simulated, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DaghError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
