"""examples/camera_app.py end to end on a folder of frames: enroll with dagh-gallery, recognize, draw."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLE = Path(__file__).parents[2] / "examples" / "camera_app.py"
pytestmark = pytest.mark.skipif(importlib.util.find_spec("skimage") is None or importlib.util.find_spec(
    "onnxruntime") is None, reason="needs scikit-image's photographs and onnxruntime")


def test_enroll_then_recognize_and_annotate_frames(export_dir, tmp_path):
    skimage_data = Path(list(importlib.util.find_spec("skimage").submodule_search_locations)[0]) / "data"
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.open(skimage_data / "astronaut.png").convert("RGB").save(frames / "000.png")
    Image.fromarray(np.zeros((240, 320, 3), np.uint8)).save(frames / "001.png")
    Image.open(skimage_data / "coffee.png").convert("RGB").save(frames / "002.png")
    gallery = tmp_path / "people.dgal"
    cli = [sys.executable, "-m", "dagh.cli.gallery"]
    added = subprocess.run([*cli, "add", str(gallery), str(frames / "000.png"), "--name", "eileen",
                            "--export", str(export_dir)], capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    out = tmp_path / "annotated"
    result = subprocess.run([sys.executable, str(EXAMPLE), "--export", str(export_dir), "--gallery", str(gallery),
                             "--source", str(frames), "--out", str(out), "--radius", "2"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("frame     0: eileen d=0 |")  # the enrolled photo itself
    assert lines[1].startswith("frame     1: no face") and lines[2].startswith("frame     2: no face")
    assert "detect" in lines[0] and "total" in lines[0]
    assert any(line.startswith("3 frames in") for line in lines) and any(line.startswith("search") for line in lines)
    pictures = sorted(out.glob("*.jpg"))
    assert len(pictures) == 3
    drawn = np.asarray(Image.open(pictures[0])).astype(int)
    plain = np.asarray(Image.open(frames / "000.png")).astype(int)
    assert np.abs(drawn - plain).max() > 100  # a box was drawn
    missing = subprocess.run([sys.executable, str(EXAMPLE), "--export", str(export_dir), "--gallery",
                              str(gallery), "--source", str(tmp_path / "nothing.mp4")], capture_output=True, text=True)
    assert missing.returncode == 2 and "error:" in missing.stderr
