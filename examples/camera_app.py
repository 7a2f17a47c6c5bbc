"""A camera app in miniature, on dagh's Recognizer: frames in, names out, pictures and latency.

    # enroll people once (photos/<name>/*.jpg), then run on a video, a camera or a folder of frames
    dagh-gallery enroll runs/people.dgal photos/ --export runs/demo/export
    python examples/camera_app.py --export runs/demo/export --gallery runs/people.dgal \\
        --source video.mp4 --out runs/annotated/ --track

--source is a folder of images (Pillow), or a video file or camera index (needs OpenCV:
pip install opencv-python-headless). Per frame it prints each face's decision (name and
Hamming distance, unknown, or why the face is unusable) and the latency of each stage
(detect / align / encode / search); at the end, p50/p90 per stage and frames/s. With
--out DIR it writes every frame annotated (boxes, landmarks, names) as DIR/NNNNNN.jpg.
Uses only the torch-free runtime.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dagh.errors import DaghError
from dagh.runtime import Recognizer
from dagh.runtime.draw import annotate
from dagh.runtime.face.crops import IMAGE_SUFFIXES
from dagh.runtime.face.frame import as_rgb_frame
from dagh.runtime.preprocess import load_image

STAGES = ("detect", "align", "encode", "search")


def frames(source: str) -> Iterator[tuple[np.ndarray, str]]:
    """Yield (uint8 HWC frame, its color order) from a folder, a video file or a camera index."""
    path = Path(source)
    if path.is_dir():
        for file in sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            yield load_image(file), "RGB"
        return
    try:
        import cv2
    except ImportError:
        raise DaghError("video files and cameras need OpenCV (pip install opencv-python-headless); "
                        "or pass a folder of images") from None
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        raise DaghError(f"cannot open video source {source!r}")
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        yield frame, "BGR"


def summary(times: dict[str, list[float]], frames_done: int, wall: float) -> str:
    lines = [f"{frames_done} frames in {wall:.2f} s ({frames_done / wall:.1f} frames/s)",
             f"{'stage':<8} {'p50 ms':>8} {'p90 ms':>8} {'share':>6}"]
    total = sum(float(np.sum(v)) for v in times.values()) or 1.0
    for stage in STAGES:
        ms = np.asarray(times[stage]) * 1e3
        lines.append(f"{stage:<8} {np.percentile(ms, 50):>8.2f} {np.percentile(ms, 90):>8.2f} "
                     f"{100 * ms.sum() / 1e3 / total:>5.0f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", required=True, help="export directory (dagh-export)")
    parser.add_argument("--gallery", required=True, help="gallery file (dagh-gallery enroll)")
    parser.add_argument("--source", required=True, help="folder of images, video file or camera index")
    parser.add_argument("--out", help="write annotated frames into this folder")
    parser.add_argument("--detector", default="retinaface", help="retinaface (default) or whole-image")
    parser.add_argument("--radius", type=int, help="largest Hamming distance called known (default: the export's)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    parser.add_argument("--track", action="store_true", help="follow faces across frames and vote their names")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    args = parser.parse_args(argv)
    try:
        out = Path(args.out) if args.out else None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        times: dict[str, list[float]] = {stage: [] for stage in STAGES}
        done, start = 0, time.perf_counter()
        with Recognizer.open(args.export, args.gallery, detector=args.detector, radius=args.radius,
                             precision=args.precision, track=args.track) as recognizer:
            for i, (frame, order) in enumerate(frames(args.source)):
                if args.max_frames and i >= args.max_frames:
                    break
                matches, took = recognizer.recognize_timed(frame, color_order=order)
                for stage in STAGES:
                    times[stage].append(getattr(took, stage))
                told = "; ".join(f"{m.label}" + (f" d={m.distance}" if m.distance is not None else "")
                                 for m in matches) or "no face"
                print(f"frame {i:5d}: {told} | " + " ".join(f"{s} {getattr(took, s) * 1e3:.1f}" for s in STAGES)
                      + f" ms, total {took.total * 1e3:.1f} ms", flush=True)
                if out is not None:
                    from PIL import Image

                    picture = annotate(as_rgb_frame(frame, order), matches, recognizer.radius)
                    Image.fromarray(picture).save(out / f"{i:06d}.jpg", quality=90)
                done += 1
        if not done:
            raise DaghError(f"no frames in {args.source!r}")
        print(summary(times, done, time.perf_counter() - start))
    except DaghError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
