"""onnxruntime CPU throughput of the INT8 (Q/DQ) model against FP32, side by side.

    python benchmarks/int8_throughput.py runs/demo/export [--batch 64] [--seconds 5]

Runs both models of one export directory in the same process, alternating
rounds so that both see the same machine state, and prints images/s and the
INT8/FP32 ratio. The Q/DQ placement targets TensorRT (Q/DQ on the inputs of
the weighted layers); onnxruntime's CPU kernels may run such a graph slower
than FP32, and this benchmark says so when they do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from dagh.manifest import load_manifest
from dagh.runtime.encode.onnxruntime_runner import OnnxRunner


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per model")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: onnxruntime default)")
    args = parser.parse_args()
    manifest = load_manifest(args.export_dir)
    if manifest.file("onnx", "int8") is None:
        print("error: this export has no model.int8.onnx; export with --int8", file=sys.stderr)
        return 2
    size = manifest.input.size
    x = np.random.default_rng(0).standard_normal((args.batch, 3, size, size)).astype(np.float32)
    runners = {p: OnnxRunner(os.path.join(args.export_dir, manifest.file("onnx", p).path), threads=args.threads,
                             batch_size=args.batch) for p in ("fp32", "int8")}
    for runner in runners.values():
        runner.run(x)  # warm-up
    counts = {p: 0 for p in runners}
    elapsed = {p: 0.0 for p in runners}
    rounds = 0
    while min(elapsed.values()) < args.seconds:
        for precision, runner in runners.items():  # alternate, so drift hits both
            t0 = time.perf_counter()
            runner.run(x)
            elapsed[precision] += time.perf_counter() - t0
            counts[precision] += args.batch
        rounds += 1
    rate = {p: counts[p] / elapsed[p] for p in runners}
    print(f"onnxruntime CPU, batch {args.batch}, {os.cpu_count()} cores, {rounds} rounds each")
    print(f"{'model':<10}{'images/s':>12}{'ms/batch':>12}")
    for p in runners:
        print(f"{p:<10}{rate[p]:>12.0f}{1e3 * args.batch / rate[p]:>12.2f}")
    print(f"INT8 / FP32 throughput: {rate['int8'] / rate['fp32']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
