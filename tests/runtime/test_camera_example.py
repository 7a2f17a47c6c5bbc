"""examples/camera_app.py end to end on a folder of frames (the CPU runtime only)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLE = Path(__file__).parents[2] / "examples" / "camera_app.py"


def test_enroll_then_match_frames(export_dir, tmp_path, rng):
    people, frames = tmp_path / "people", tmp_path / "frames"
    faces = rng.integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    for i, face in enumerate(faces):
        (people / f"person{i}").mkdir(parents=True)
        Image.fromarray(face).save(people / f"person{i}" / "a.png")
    frames.mkdir()
    for i, face in enumerate(faces):  # a frame holds the enrolled face at (8, 8)
        canvas = np.zeros((64, 64, 3), np.uint8)
        canvas[8:56, 8:56] = face
        Image.fromarray(canvas).save(frames / f"{i:03d}.png")
    gallery = tmp_path / "g.dgal"
    run = lambda *args: subprocess.run([sys.executable, str(EXAMPLE), "--export", str(export_dir),  # noqa: E731
                                        "--gallery", str(gallery), *args], capture_output=True, text=True)
    enrolled = run("--enroll", str(people))
    assert enrolled.returncode == 0, enrolled.stderr
    assert "enrolled 3 images of 3 people" in enrolled.stdout
    result = run("--source", str(frames), "--box", "8,8,48,48")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("frame")]
    assert len(lines) == 3
    for line in lines:  # the exact crop was enrolled: distance 0
        assert "distance   0" in line and "total" in line
    outside = run("--source", str(frames), "--box", "40,40,48,48")
    assert outside.returncode == 2 and "outside" in outside.stderr
