"""The recognizer's stages on 640x480 frames with 1 and 5 faces: detect / align / encode / search.

    python benchmarks/recognizer.py runs/demo/export                 # gallery of 10k random codes
    python benchmarks/recognizer.py runs/demo/export --gallery-size 1000000 --frames 200

Frames are composed from the head of the astronaut photo that dagh ships
(dagh.profile.frames: pasted 1 or 5 times at different scales onto a 640x480
background), so the detector finds real faces. For each frame kind it runs ``Recognizer.recognize_timed`` many
times and prints per stage p50/p90 in ms and its share of the frame, then
what everything after detection costs on top of the detector (the goal: at
most 30%).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

STAGES = ("detect", "align", "encode", "search")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", help="export directory (dagh-export)")
    parser.add_argument("--gallery-size", type=int, default=10_000, help="random codes in the gallery")
    parser.add_argument("--frames", type=int, default=100, help="frames timed per frame kind")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    args = parser.parse_args()

    from dagh.profile.frames import composed_frame
    from dagh.runtime import Encoder, HammingIndex, Recognizer
    from dagh.runtime.bits import pack_codes
    from dagh.runtime.face.detectors import open_detector

    encoder = Encoder.open(args.export, precision=args.precision)
    rng = np.random.default_rng(0)
    index = HammingIndex(encoder.bits)
    index.add(pack_codes(rng.integers(0, 2, (args.gallery_size, encoder.bits), dtype=np.int8)))
    recognizer = Recognizer(encoder, index, None, open_detector("retinaface"), radius=encoder.bits // 8)
    print(f"{args.export} ({encoder.bits} bits, {args.precision}), gallery {args.gallery_size:,} codes, "
          f"{args.frames} frames per kind")
    for faces in (1, 5):
        frame = composed_frame(faces)
        found = len(recognizer.recognize(frame, color_order="RGB"))
        for _ in range(3):  # warm-up: sessions, numba, caches
            recognizer.recognize_timed(frame, color_order="RGB")
        samples = {stage: [] for stage in STAGES}
        start = time.perf_counter()
        for _ in range(args.frames):
            _, took = recognizer.recognize_timed(frame, color_order="RGB")
            for stage in STAGES:
                samples[stage].append(getattr(took, stage) * 1e3)
        wall = time.perf_counter() - start
        total = sum(sum(v) for v in samples.values())
        print(f"\n640x480, {faces} face(s) pasted, {found} found: {args.frames / wall:.1f} frames/s")
        print(f"{'stage':<8} {'p50 ms':>8} {'p90 ms':>8} {'share':>6}")
        for stage in STAGES:
            ms = np.asarray(samples[stage])
            print(f"{stage:<8} {np.percentile(ms, 50):>8.2f} {np.percentile(ms, 90):>8.2f} "
                  f"{100 * ms.sum() / total:>5.1f}%")
        after = sum(np.percentile(samples[s], 50) for s in STAGES[1:])
        detect = np.percentile(samples["detect"], 50)
        print(f"after detection: {after:.2f} ms p50, {100 * after / detect:.0f}% on top of the detector "
              f"(goal <= 30%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
