import numpy as np
import pytest
from PIL import Image

from dagh.data import DataSource, load_splits
from dagh.data.folder import load_image_folder
from dagh.errors import DataError


def make_folder(root, counts, size=40):
    rng = np.random.default_rng(0)
    for identity, n in counts.items():
        (root / identity).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / identity / f"{i}.png")
    return root


def test_folder_loads_resizes_and_splits(tmp_path):
    root = make_folder(tmp_path / "faces", {"alice": 5, "bob": 4})
    faces, report = load_image_folder(root, 32)
    assert faces.images.shape == (9, 32, 32, 3) and faces.names == ["alice", "bob"]
    assert report.loaded == 9 and not report.skipped
    splits = load_splits(DataSource.parse(str(root)))
    assert len(splits.train) + len(splits.test) == 9
    assert set(splits.test.labels) == {0, 1}


def test_missing_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nope", 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_image_folder(tmp_path / "empty", 32)
    with pytest.raises(DataError, match="empty"):
        DataSource.parse(str(tmp_path / "empty"))


def test_identity_with_one_image_is_refused_or_dropped(tmp_path):
    root = make_folder(tmp_path / "faces", {"alice": 3, "bob": 1, "carol": 2})
    with pytest.raises(DataError, match="'bob'"):
        load_splits(DataSource.parse(str(root)))
    splits = load_splits(DataSource.parse(str(root), min_images=2), log=lambda m: None)
    assert splits.train.names == ["alice", "carol"]


def test_corrupt_images_are_refused_or_skipped(tmp_path):
    root = make_folder(tmp_path / "faces", {"alice": 3, "bob": 3})
    (root / "alice" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (root / "bob" / "truncated.png").write_bytes((root / "bob" / "0.png").read_bytes()[:40])
    with pytest.raises(DataError, match="broken.jpg|truncated.png"):
        load_image_folder(root, 32)
    faces, report = load_image_folder(root, 32, bad_images="skip")
    assert len(faces) == 6 and len(report.skipped) == 2
    messages = []
    load_splits(DataSource.parse(str(root), bad_images="skip"), log=messages.append)
    assert any("skipped 2" in m for m in messages)
