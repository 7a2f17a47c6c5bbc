"""A camera app in miniature: frames -> face crop -> packed code -> gallery search -> best match.

    # enrol a gallery from a folder of people (root/<name>/*.jpg), then run on frames
    python examples/camera_app.py --export runs/demo/export --enroll faces/ --gallery runs/gallery.dgal
    python examples/camera_app.py --export runs/demo/export --gallery runs/gallery.dgal \\
        --source video.mp4 --box 100,80,64,64

--source is a video file or camera index (needs OpenCV: pip install opencv-python-headless)
or a folder of images (Pillow). Face detection is out of scope: crops come from a fixed
--box x,y,w,h, or per frame from --boxes FILE (lines "frame x y w h"); without either, the
whole frame is the crop. Prints, per frame, the best match, its Hamming distance and the
latency of each step. Uses only the torch-free runtime.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dagh.errors import DaghError
from dagh.fileio import atomic_write_text
from dagh.runtime.encode.encoder import Encoder
from dagh.runtime.gallery.file import load_gallery, save_gallery
from dagh.runtime.preprocess import load_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def frames(source: str) -> Iterator[tuple[np.ndarray, str]]:
    """Yield (uint8 HWC frame, color order) from a folder, a video file or a camera index."""
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


def crop(frame: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    if box is None:
        return frame
    x, y, w, h = box
    if x < 0 or y < 0 or x + w > frame.shape[1] or y + h > frame.shape[0]:
        raise DaghError(f"box {box} lies outside the {frame.shape[1]}x{frame.shape[0]} frame")
    return frame[y:y + h, x:x + w]


def enroll(encoder: Encoder, root: Path, gallery: Path) -> None:
    people = sorted(p for p in root.iterdir() if p.is_dir())
    codes, ids = [], []
    for person_id, person in enumerate(people):
        files = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            codes.append(encoder.encode([str(f) for f in files]))
            ids.extend([person_id] * len(files))
    if not codes:
        raise DaghError(f"no images under {root}/<name>/")
    save_gallery(gallery, np.concatenate(codes), np.asarray(ids), encoder.bits)
    atomic_write_text(gallery.with_suffix(".names.json"), json.dumps([p.name for p in people]))
    print(f"enrolled {len(ids)} images of {len(people)} people into {gallery}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", required=True, help="dagh-export directory")
    parser.add_argument("--gallery", required=True, help="gallery file to read (or write with --enroll)")
    parser.add_argument("--enroll", help="folder root/<name>/*.jpg to build the gallery from")
    parser.add_argument("--source", help="video file, camera index, or folder of images")
    parser.add_argument("--box", help="fixed face box x,y,w,h")
    parser.add_argument("--boxes", help="file of 'frame x y w h' lines")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    parser.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "tensorrt"])
    parser.add_argument("--index", default="cpu", choices=["cpu", "gpu", "numpy"])
    parser.add_argument("--max-frames", type=int, default=0)
    args = parser.parse_args()
    try:
        encoder = Encoder.open(args.export, precision=args.precision, backend=args.backend)
        if args.enroll:
            enroll(encoder, Path(args.enroll), Path(args.gallery))
            if not args.source:
                return 0
        if not args.source:
            raise DaghError("nothing to do: pass --source (and --enroll to build a gallery first)")
        gallery = load_gallery(args.gallery, bits=encoder.bits)
        names_file = Path(args.gallery).with_suffix(".names.json")
        names = json.loads(names_file.read_text()) if names_file.exists() else None
        index = gallery.to_index(args.index)
        fixed = tuple(int(v) for v in args.box.split(",")) if args.box else None
        per_frame = {}
        if args.boxes:
            for line in Path(args.boxes).read_text().split("\n"):
                if line.strip():
                    f, x, y, w, h = (int(v) for v in line.split())
                    per_frame[f] = (x, y, w, h)
        print(f"{encoder.precision} on {encoder.backend} {encoder.providers or ''}, gallery of {len(index)} "
              f"{encoder.bits}-bit codes")
        for number, (frame, order) in enumerate(frames(args.source)):
            if args.max_frames and number >= args.max_frames:
                break
            t0 = time.perf_counter()
            face = crop(frame, per_frame.get(number, fixed))
            t1 = time.perf_counter()
            code = encoder.encode(face, color_order=order)
            t2 = time.perf_counter()
            distance, ident = index.search(code, 1)
            t3 = time.perf_counter()
            who = ident[0, 0]
            label = names[who] if names is not None and 0 <= who < len(names) else str(who)
            print(f"frame {number:5d}: {label:<20} distance {distance[0, 0]:3d}   "
                  f"crop {1e3 * (t1 - t0):.2f} ms, encode {1e3 * (t2 - t1):.2f} ms, "
                  f"search {1e3 * (t3 - t2):.2f} ms, total {1e3 * (t3 - t0):.2f} ms")
    except DaghError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
