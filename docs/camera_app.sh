#!/bin/bash
# docs/camera_app.jpg, the camera app's annotated output (bash docs/camera_app.sh [EXPORT_DIR], after
# make demo export-demo): the astronaut enrolled, a frame with her,
# two LFW strangers and a too-small face.
set -e
cd "$(dirname "$0")/.."
EXPORT=${1:-runs/demo/export}
export W=$(mktemp -d); mkdir -p $W/people/eileen $W/frames
.venv/bin/python - <<'PY'
import importlib.util, os, pathlib
import numpy as np
from PIL import Image
root = pathlib.Path(list(importlib.util.find_spec("skimage").submodule_search_locations)[0]) / "data"
astro = Image.open(root / "astronaut.png").convert("RGB")
astro.save(os.environ["W"] + "/people/eileen/1.png")
lfw = np.load(root / "lfw_subset.npy")
frame = Image.new("RGB", (640, 480), (70, 90, 110))
frame.paste(astro.crop((110, 0, 340, 260)), (20, 110))                      # eileen, as enrolled
for i, (x, y) in zip((3, 17), ((300, 60), (470, 230))):                      # two strangers
    g = Image.fromarray((lfw[i] * 255).astype(np.uint8)).resize((150, 150), Image.BICUBIC).convert("RGB")
    frame.paste(g, (x, y))
frame.paste(astro.crop((150, 30, 300, 210)).resize((46, 55)), (320, 320))   # a face too small to use
frame.save(os.environ["W"] + "/frames/000.png")
PY
.venv/bin/dagh-gallery add $W/people.dgal $W/people/eileen/1.png --name eileen --export $EXPORT
.venv/bin/python examples/camera_app.py --export $EXPORT --gallery $W/people.dgal --source $W/frames --out $W/out
cp $W/out/000000.jpg docs/camera_app.jpg
