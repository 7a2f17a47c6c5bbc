import numpy as np
import pytest

from dagh.data.synthetic import SyntheticConfig, make_synthetic_splits, render_faces, sample_identities
from dagh.errors import ConfigError

SMALL = SyntheticConfig(identities=6, train_per_identity=5, test_per_identity=2, seed=3)


def test_same_seed_same_bytes_other_seed_differs():
    a, b = make_synthetic_splits(SMALL), make_synthetic_splits(SMALL)
    assert np.array_equal(a.train.images, b.train.images) and np.array_equal(a.test.images, b.test.images)
    c = make_synthetic_splits(SyntheticConfig(identities=6, train_per_identity=5, test_per_identity=2, seed=4))
    assert not np.array_equal(a.train.images, c.train.images)


def test_shapes_labels_and_sizes():
    s = make_synthetic_splits(SMALL)
    assert s.train.images.shape == (30, 32, 32, 3) and s.train.images.dtype == np.uint8
    assert s.test.images.shape == (12, 32, 32, 3)
    assert np.array_equal(np.bincount(s.train.labels), [5] * 6)
    big = make_synthetic_splits(SyntheticConfig(identities=2, train_per_identity=1, test_per_identity=1, size=64))
    assert big.train.images.shape == (2, 64, 64, 3)


def test_images_of_one_identity_vary_and_identities_differ():
    params = sample_identities(2, np.random.default_rng(0), lookalike_fraction=0.0)
    imgs = render_faces(params, np.array([0, 0, 1]), 32, np.random.default_rng(1)).astype(float)
    assert np.abs(imgs[0] - imgs[1]).mean() > 1.0  # pose/lighting/background vary
    assert imgs.std() > 20  # not a blank canvas


def test_lookalikes_are_closer_than_strangers():
    rng = np.random.default_rng(5)
    p = sample_identities(200, rng, lookalike_fraction=0.5)
    keys = ["face_w", "face_h", "eye_dx", "mouth_w", "nose_len"]
    vec = np.stack([p[k] for k in keys], 1)
    d = np.abs(vec[:, None] - vec[None]).sum(-1) + np.eye(200) * 1e9
    nearest = d.min(1)
    # with half the identities look-alikes, many nearest neighbours are much closer than average
    assert np.median(nearest) < 0.5 * np.median(d[d < 1e8])


@pytest.mark.parametrize("bad", [dict(identities=1), dict(train_per_identity=0), dict(size=4),
                                 dict(lookalike_fraction=1.0)])
def test_bad_config(bad):
    with pytest.raises(ConfigError):
        SyntheticConfig(**bad)
