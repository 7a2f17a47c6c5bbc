"""Verification against a brute-force reference written the slow, obvious way."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagh.data import DataSource
from dagh.errors import ConfigError, DataError
from dagh.eval.verification import (
    SEEN_TEST_SPLIT,
    UNSEEN_SYNTHETIC,
    distance_histograms,
    evaluate_verification,
    min_impostor_pairs,
    verification_faces,
)
from dagh.runtime.bits import pack_codes


def brute_histograms(codes, labels):
    bits = codes.shape[1]
    genuine, impostor = [0] * (bits + 1), [0] * (bits + 1)
    for i in range(len(codes)):
        for j in range(i + 1, len(codes)):
            d = int(sum(a != b for a, b in zip(codes[i], codes[j])))
            (genuine if labels[i] == labels[j] else impostor)[d] += 1
    return genuine, impostor


def brute_point(genuine, impostor, target):
    """Try every radius from the largest down; the first whose FAR is within target."""
    for r in range(len(impostor) - 1, -1, -1):
        far = sum(impostor[:r + 1]) / sum(impostor)
        if far <= target:
            return r, far, sum(genuine[:r + 1]) / sum(genuine)
    return -1, 0.0, 0.0


def brute_eer(genuine, impostor):
    """Scan the FAR/FRR curves over radii -1..bits for the crossing, interpolated linearly."""
    rates = [(0.0, 1.0)] + [(sum(impostor[:r + 1]) / sum(impostor), 1 - sum(genuine[:r + 1]) / sum(genuine))
                            for r in range(len(impostor))]
    for (far0, frr0), (far1, frr1) in zip(rates, rates[1:]):
        if far1 >= frr1:
            if far1 == frr1:
                return far1
            t = (frr0 - far0) / ((frr0 - far0) - (frr1 - far1))
            return far0 + t * (far1 - far0)
    raise AssertionError("no crossing")


def planted(rng, identities, per, bits, noise):
    """Identity centres plus ``noise`` flip probability per bit: genuine pairs are near, impostors far."""
    centres = rng.choice([-1, 1], (identities, bits))
    labels = np.repeat(np.arange(identities), per)
    flips = rng.random((len(labels), bits)) < noise
    return np.where(flips, -centres[labels], centres[labels]).astype(np.int8), labels


@st.composite
def case(draw):
    bits = draw(st.integers(1, 70))  # across one and two 64-bit words
    n = draw(st.integers(2, 40))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    identities = draw(st.integers(1, 6))
    codes, labels = planted(rng, identities, -(-n // identities), bits, draw(st.floats(0.0, 0.5)))
    return codes[:n], labels[:n], draw(st.integers(1, 9))


@settings(max_examples=60, deadline=None)
@given(case())
def test_histograms_match_brute_force(c):
    codes, labels, block = c
    genuine, impostor = distance_histograms(codes, labels, block=block)
    ref_g, ref_i = brute_histograms(codes, labels)
    assert genuine.tolist() == ref_g and impostor.tolist() == ref_i
    assert genuine.sum() + impostor.sum() == len(codes) * (len(codes) - 1) // 2


def test_packed_and_01_codes_give_the_same_histograms(rng):
    codes, labels = planted(rng, 7, 5, 37, 0.2)
    pm1 = distance_histograms(codes, labels)
    for other in (distance_histograms((codes > 0).astype(np.uint8), labels),
                  distance_histograms(pack_codes(codes), labels, bits=37)):
        assert all(np.array_equal(a, b) for a, b in zip(pm1, other))


@pytest.mark.parametrize("bits, noise", [(12, 0.1), (48, 0.15), (48, 0.3), (96, 0.25)])
def test_report_matches_brute_force_on_planted_structure(rng, bits, noise):
    codes, labels = planted(rng, 30, 4, bits, noise)
    report = evaluate_verification(codes, labels, target_far=2e-3)
    ref_g, ref_i = brute_histograms(codes, labels)
    assert list(report.genuine_histogram) == ref_g and list(report.impostor_histogram) == ref_i
    assert report.genuine_pairs == 30 * 6 and report.impostor_pairs == 120 * 119 // 2 - 180
    for point in (*report.points, report.target):
        r, far, tar = brute_point(ref_g, ref_i, point.target_far)
        assert point.radius == r and point.far == pytest.approx(far) and point.tar == pytest.approx(tar)
    assert report.eer == pytest.approx(brute_eer(ref_g, ref_i))
    assert report.tar_at_far[1e-2] >= report.tar_at_far[1e-3] >= report.tar_at_far[1e-4]
    # structure was planted: genuine pairs are nearer than impostors (unrelated codes: EER near 0.5)
    assert report.eer < 0.35
    shuffled = evaluate_verification(codes, rng.permutation(labels))
    assert shuffled.eer > 0.35 and report.tar_at_far[1e-2] > shuffled.tar_at_far[1e-2]


def test_radius_for_far_exact_on_a_hand_built_case():
    # 4 bits, labels 0,0,1,1: genuine pairs (A,B) and (C,D) at distance 1; impostors A-C, B-D at 4, A-D, B-C at 3
    codes = np.array([[1, 1, 1, 1], [1, 1, 1, -1], [-1, -1, -1, -1], [-1, -1, -1, 1]])
    report = evaluate_verification(codes, [0, 0, 1, 1])
    assert report.genuine_histogram == (0, 2, 0, 0, 0)
    assert report.impostor_histogram == (0, 0, 0, 2, 2)
    assert report.radius_for_far(0.1) == 2              # radii 0, 1 and 2 all have FAR 0: the largest
    assert report.radius_for_far(0.49) == 2             # FAR at r=3 is 0.5
    assert report.radius_for_far(0.5) == 3              # equal to the target is within it
    assert report.radius_for_far(0.999) == 3            # r=4 accepts every impostor
    point = report.operating_point(0.5)
    assert (point.radius, point.far, point.tar) == (3, 0.5, 1.0) and not point.far_measurable
    assert report.eer == 0.0                            # radius 1 separates them
    # distance 0 among impostors: no radius meets a strict FAR, accept nothing
    tied = evaluate_verification(np.array([[1, 1], [1, 1], [1, 1]]), [0, 0, 1])
    assert tied.radius_for_far(0.5) == -1 and tied.operating_point(0.5).tar == 0.0
    assert tied.eer == pytest.approx(0.5)


def test_radius_for_far_is_monotone(rng):
    report = evaluate_verification(*planted(rng, 40, 3, 24, 0.25))
    targets = np.geomspace(1e-5, 0.99, 60)
    radii = [report.radius_for_far(t) for t in targets]
    assert radii == sorted(radii) and radii[0] < radii[-1]
    for t, r in zip(targets, radii):
        far = np.cumsum(report.impostor_histogram) / report.impostor_pairs
        assert (r < 0 or far[r] <= t) and (r == report.bits or far[r + 1] > t)


def test_too_few_impostor_pairs_is_a_flag(rng):
    assert min_impostor_pairs(1e-3) == 10_000 and min_impostor_pairs(1e-4) == 100_000
    small = evaluate_verification(*planted(rng, 10, 3, 16, 0.2), target_far=1e-3)   # 405 impostor pairs
    assert small.impostor_pairs == 405 and not small.target.far_measurable
    assert [p.far_measurable for p in small.points] == [False, False, False]
    big = evaluate_verification(*planted(rng, 150, 2, 16, 0.2), target_far=1e-3)     # 44,700 pairs
    assert big.target.far_measurable and [p.far_measurable for p in big.points] == [True, True, False]
    assert big.to_dict()["target"]["far_measurable"] is True
    assert set(big.to_dict()["tar_at_far"]) == {"0.01", "0.001", "0.0001"}
    # the boundary: 45 codes, one genuine pair, 989 impostor pairs
    codes, labels = rng.choice([-1, 1], (45, 16)), np.r_[0, np.arange(44)]
    assert evaluate_verification(codes, labels, target_far=10 / 989).target.far_measurable
    assert not evaluate_verification(codes, labels, target_far=10 / 990).target.far_measurable


def test_bad_input():
    with pytest.raises(DataError, match="genuine and impostor"):
        evaluate_verification(np.ones((3, 8)), [0, 1, 2])
    with pytest.raises(DataError, match="genuine and impostor"):
        evaluate_verification(np.ones((3, 8)), [0, 0, 0])
    with pytest.raises(DataError, match="one label"):
        distance_histograms(np.ones((3, 8)), [0, 1])
    with pytest.raises(DataError, match=r"\+1/-1"):
        distance_histograms(np.full((3, 8), 2), [0, 0, 1])
    with pytest.raises(DataError, match="code-length mismatch"):
        distance_histograms(np.zeros((3, 2), np.uint8), [0, 0, 1], bits=24)
    with pytest.raises(ConfigError, match="target FAR"):
        evaluate_verification(np.array([[1], [1], [-1]]), [0, 0, 1], target_far=0)


def test_unseen_synthetic_identities_differ_from_training():
    source = DataSource(identities=4, train_per_identity=2, test_per_identity=1, size=16)
    vset = verification_faces(source, identities=6, per_identity=3)
    assert vset.unseen and vset.description == UNSEEN_SYNTHETIC
    assert vset.faces.images.shape == (18, 16, 16, 3) and vset.faces.num_identities == 6
    again = verification_faces(source, identities=6, per_identity=3)
    assert np.array_equal(vset.faces.images, again.faces.images)    # seeded
    from dagh.data import load_splits

    train = load_splits(source).train
    assert not any(np.array_equal(a, b) for a in vset.faces.images[:3] for b in train.images)


def test_other_sources_use_the_test_split(tmp_path):
    from dagh.data import FaceSet, Splits

    faces = FaceSet(np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 0, 1, 1]), ["a", "b"])
    splits = Splits(faces, faces.subset(np.array([0, 2])), {})
    (tmp_path / "a").mkdir()
    vset = verification_faces(DataSource(kind="folder", path=str(tmp_path)), splits)
    assert not vset.unseen and vset.description == SEEN_TEST_SPLIT and vset.faces is splits.test


def test_imports_without_torch():
    code = "import sys, dagh.eval.verification; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
