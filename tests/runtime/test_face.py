"""Face detection, alignment, quality gates and frame checks, on real photographs scikit-image ships."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from dagh.errors import ConfigError, DataError, DependencyError
from dagh.runtime.face.align import (
    ARCFACE_TEMPLATE,
    align_face,
    crop_box,
    similarity_transform,
    template_pixels,
)
from dagh.runtime.face.detect import Detection, box_iou, nms
from dagh.runtime.face.detectors import open_detector
from dagh.runtime.face.frame import as_rgb_frame
from dagh.runtime.face.quality import QualityGates, sharpness

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("skimage") is None,
                                reason="scikit-image (its bundled photographs) is not installed")


def photo(name: str) -> np.ndarray:
    """A photograph from scikit-image's bundled data, read as a file (skimage itself is not imported)."""
    root = Path(list(importlib.util.find_spec("skimage").submodule_search_locations)[0])
    return np.asarray(Image.open(root / "data" / name).convert("RGB"))


@pytest.fixture(scope="module")
def detector():
    try:
        return open_detector("retinaface")
    except DependencyError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def astronaut():
    return photo("astronaut.png")


def test_one_face_on_the_astronaut_with_landmarks_in_order(detector, astronaut):
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    x1, y1, x2, y2 = face.box
    assert face.score > 0.95 and 80 < x2 - x1 < 160 and 100 < y2 - y1 < 160
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)
    assert lx < nx < rx and mlx < mrx             # image-left first
    assert max(ly, ry) < ny < min(mly, mry)       # eyes, then nose, then mouth, top to bottom


def test_several_faces_in_a_composed_frame(detector, astronaut):
    face = Image.fromarray(astronaut[30:210, 150:300])  # the head, 150 x 180
    frame = Image.new("RGB", (640, 480), (90, 110, 100))
    placed = []
    for (x, y), scale in zip([(20, 40), (250, 60), (460, 250), (120, 290)], [1.0, 0.8, 1.1, 0.6]):
        tile = face.resize((int(150 * scale), int(180 * scale)))
        frame.paste(tile, (x, y))
        placed.append((x, y, x + tile.width, y + tile.height))
    found = detector.detect(np.asarray(frame))
    assert len(found) == 4
    for box in placed:  # each pasted head holds exactly one detection
        assert sum(box_iou(box, f.box) > 0.25 for f in found) == 1


@pytest.mark.parametrize("name", ["coffee.png", "brick.png", "grass.png", "chelsea.png"])
def test_no_face_where_there_is_none(detector, name):
    assert detector.detect(photo(name)) == []


def test_no_face_in_blank_and_tiny_frames(detector):
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((1, 1, 3), 128, np.uint8)) == []


def test_alignment_puts_the_landmarks_on_the_template_within_a_pixel(rng):
    size = 112
    target = template_pixels(ARCFACE_TEMPLATE, size)
    angle, scale, shift = 0.35, 1.8, np.array([160.0, 95.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = target @ rotation.T + shift + rng.normal(0, 0.2, (5, 2))
    frame = np.zeros((320, 420, 3), np.uint8)
    yy, xx = np.mgrid[0:320, 0:420] + 0.5
    for x, y in landmarks:
        frame[(xx - x) ** 2 + (yy - y) ** 2 < 9] = 255
    crop = align_face(frame, landmarks, ARCFACE_TEMPLATE, size)[..., 0].astype(float)
    Y, X = np.mgrid[0:size, 0:size] + 0.5
    matrix = similarity_transform(landmarks, target)
    mapped = landmarks @ matrix[:, :2].T + matrix[:, 2]
    for (tx, ty), (mx, my) in zip(target, mapped):
        weight = ((X - mx) ** 2 + (Y - my) ** 2 < 36) * crop
        cx, cy = (weight * X).sum() / weight.sum(), (weight * Y).sum() / weight.sum()
        assert abs(cx - tx) < 1.0 and abs(cy - ty) < 1.0


def test_alignment_of_the_astronaut_is_upright(detector, astronaut):
    face = detector.detect(astronaut)[0]
    crop = align_face(astronaut, face.landmarks, ARCFACE_TEMPLATE, 112)
    again = detector.detect(np.asarray(Image.fromarray(crop).resize((224, 224))))
    assert len(again) == 1  # still a face
    points = again[0].landmarks / 2  # back to crop pixels
    target = template_pixels(ARCFACE_TEMPLATE, 112)
    # A similarity cannot fit one face's five points exactly (measured: 7.5 px at most), but the eyes sit
    # where the template puts them, level.
    assert np.abs(points - target).max() < 10 and np.abs(points[:2] - target[:2]).max() < 4
    assert abs(np.degrees(np.arctan2(points[1, 1] - points[0, 1], points[1, 0] - points[0, 0]))) < 5


def test_box_crop_is_square_with_its_margin():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40:60, 90:110] = 255  # a 20 x 20 "face"
    crop = crop_box(frame, (90, 40, 110, 60), 26, margin=0.15)  # 20 * 1.3 = 26 px: one pixel a pixel
    assert crop.shape == (26, 26, 3)
    assert crop[3:23, 3:23].min() == 255 and crop[:2].max() == 0 and crop[:, :2].max() == 0
    whole = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    assert np.array_equal(crop_box(whole, (0, 0, 32, 32), 32), whole)  # a pre-cropped face is itself


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.4).tolist() == [1, 2]


def test_quality_gates_name_each_problem(detector, astronaut):
    gates = QualityGates(min_face=32)
    face = detector.detect(astronaut)[0]
    crop = align_face(astronaut, face.landmarks, ARCFACE_TEMPLATE, 112)
    assert gates.check(face, astronaut.shape, crop) is None
    assert "confidence" in gates.check(Detection(face.box, 0.5, face.landmarks), astronaut.shape, crop)
    assert "too small" in gates.check(Detection((10, 10, 30, 30), 0.99), astronaut.shape, None)
    assert "clipped" in gates.check(Detection((-60, 10, 60, 130), 0.99), astronaut.shape, None)
    blurred = np.asarray(Image.fromarray(crop).filter(ImageFilter.GaussianBlur(3)))
    assert "blurred" in gates.check(face, astronaut.shape, blurred)
    assert QualityGates(None, None, None, None).check(Detection((-60, 10, 60, 130), 0.1), (10, 10), blurred) is None


def test_sharpness_default_separates_sharp_from_blurred_synthetic_crops():
    from dagh.data.synthetic import SyntheticConfig, make_synthetic_splits

    crops = make_synthetic_splits(SyntheticConfig(identities=20, train_per_identity=5, test_per_identity=1,
                                                  size=32)).train.images
    limit = QualityGates().min_sharpness
    sharp = np.array([sharpness(c) for c in crops])
    blurred = np.array([sharpness(np.asarray(Image.fromarray(c).filter(ImageFilter.GaussianBlur(2))))
                        for c in crops])
    assert (sharp >= limit).mean() >= 0.99 and (blurred < limit).mean() >= 0.8


def test_bad_frames_get_clear_errors():
    with pytest.raises(DataError, match="empty"):
        as_rgb_frame(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(DataError, match="uint8"):
        as_rgb_frame(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(DataError, match="alpha"):
        as_rgb_frame(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(DataError, match="grayscale"):
        as_rgb_frame(np.zeros((10, 10), np.uint8))
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (20000, 20000, 3))  # no memory behind it
    with pytest.raises(DataError, match="MP"):
        as_rgb_frame(huge)
    with pytest.raises(DataError, match="numpy array"):
        as_rgb_frame([[1, 2, 3]])
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 0] = 255  # blue in BGR
    assert as_rgb_frame(bgr, "BGR")[0, 0].tolist() == [0, 0, 255]


def test_unknown_detector_and_missing_weights_are_clear(monkeypatch):
    with pytest.raises(ConfigError, match="retinaface"):
        open_detector("haar")
    from importlib import metadata

    from dagh.runtime.face import retinaface

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    retinaface.retinaface_onnx.cache_clear()
    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(DependencyError, match=r"dagh\[face\]"):
        retinaface.retinaface_onnx()
    retinaface.retinaface_onnx.cache_clear()


def test_tampered_weights_are_refused(monkeypatch, tmp_path):
    from importlib import metadata

    from dagh.runtime.face import retinaface

    fake = tmp_path / "retinaface" / "weights.py"
    fake.parent.mkdir()
    fake.write_text("WEIGHTS = b'not the network'\n")

    class Dist:
        def locate_file(self, name):
            return tmp_path / name

    retinaface.retinaface_onnx.cache_clear()
    monkeypatch.setattr(metadata, "distribution", lambda name: Dist())
    with pytest.raises(DataError, match="sha256"):
        retinaface.retinaface_onnx()
    fake.write_text("import os\nWEIGHTS = os.system('echo pwned')\n")  # code, not data: never run
    with pytest.raises(DataError, match="cannot read"):
        retinaface.retinaface_onnx()
    retinaface.retinaface_onnx.cache_clear()


def test_lfw_crops_found_and_non_faces_mostly_not(detector):
    """scikit-image's LFW subset: 100 face crops and 100 non-faces, 25 x 25 grey, upscaled to 160 px."""
    root = Path(list(importlib.util.find_spec("skimage").submodule_search_locations)[0]) / "data"
    images = np.load(root / "lfw_subset.npy", allow_pickle=False)
    found = []
    for image in images:
        grey = Image.fromarray((image * 255).astype(np.uint8)).resize((160, 160), Image.BICUBIC)
        found.append(len(detector.detect(np.asarray(grey.convert("RGB")))) > 0)
    found = np.array(found)
    assert found[:100].sum() >= 97 and found[100:].sum() <= 2  # measured: 100 of 100, 1 of 100
