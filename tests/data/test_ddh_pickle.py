import os
import pickle

import numpy as np
import pytest

from dagh.data.ddh_pickle import load_ddh_pickles, restricted_load
from dagh.errors import DataError, UnsafeFileError


def py2_style_pickle(obj) -> bytes:
    """Pickle as numpy 1.x / Python 2 wrote it: numpy.core.multiarray names."""
    data = pickle.dumps(obj, protocol=2)
    return data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def write_release(root, rng, n_ids=4, per=5):
    root.mkdir()
    for part, count in (("train", per), ("test", 2)):
        x = rng.integers(0, 255, (n_ids * count, 3072)).astype(np.uint8)
        y = np.repeat(np.arange(10, 10 + n_ids), count)
        (root / f"{part}_data").write_bytes(py2_style_pickle((x, y)))
    return root


def test_loads_py2_style_pickles_into_splits(tmp_path, rng):
    splits = load_ddh_pickles(write_release(tmp_path / "ytf", rng))
    assert splits.train.images.shape == (20, 32, 32, 3)
    assert splits.test.images.shape == (8, 32, 32, 3)
    assert splits.train.names == ["10", "11", "12", "13"]
    assert set(splits.test.labels) == {0, 1, 2, 3}


def test_rows_are_channel_first():
    x = np.zeros((1, 3072), np.uint8)
    x[0, :1024] = 200  # the red plane
    obj = restricted_load(py2_style_pickle((x, [0])))
    img = np.asarray(obj[0]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert (img[0, :, :, 0] == 200).all() and (img[0, :, :, 1] == 0).all()


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    with pytest.raises(UnsafeFileError, match="system"):
        restricted_load(pickle.dumps(RunsCode()))
    root = tmp_path / "evil"
    root.mkdir()
    (root / "train_data").write_bytes(pickle.dumps((RunsCode(), [0])))
    with pytest.raises(UnsafeFileError):
        load_ddh_pickles(root)


def test_malformed_content(tmp_path):
    with pytest.raises(DataError):
        restricted_load(b"garbage")
    root = tmp_path / "bad"
    root.mkdir()
    (root / "data").write_bytes(py2_style_pickle((np.zeros((2, 100), np.uint8), [0, 1])))
    with pytest.raises(DataError, match="3072"):
        load_ddh_pickles(root)
