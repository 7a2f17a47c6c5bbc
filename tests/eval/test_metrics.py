"""Metrics against a brute-force reference written the slow, obvious way."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagh.errors import DataError
from dagh.eval.metrics import bit_agreement, evaluate_retrieval, hamming_distances


def brute_force(q, ql, d, dl, topk, radius):
    aps, pks, prs, rcs = [], {k: [] for k in topk}, [], []
    for i in range(len(q)):
        dist = [int(sum(a != b for a, b in zip(q[i], d[j]))) for j in range(len(d))]
        order = sorted(range(len(d)), key=lambda j: (dist[j], j))  # ties by database index
        rel = [dl[j] == ql[i] for j in order]
        n_rel = sum(rel)
        for k in topk:
            pks[k].append(sum(rel[:k]) / k)
        within = [j for j in range(len(d)) if dist[j] <= radius]
        rel_within = sum(dl[j] == ql[i] for j in within)
        prs.append(rel_within / len(within) if within else 0.0)
        if n_rel == 0:
            continue
        hits, ap = 0, 0.0
        for rank, r in enumerate(rel, 1):
            if r:
                hits += 1
                ap += hits / rank
        aps.append(ap / n_rel)
        rcs.append(rel_within / n_rel)
    return (np.mean(aps) if aps else 0.0, {k: np.mean(v) for k, v in pks.items()}, np.mean(prs),
            np.mean(rcs) if rcs else 0.0)


@st.composite
def retrieval_case(draw):
    bits = draw(st.integers(1, 12))  # few bits: many ties
    nq, nd = draw(st.integers(1, 8)), draw(st.integers(1, 30))
    n_labels = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    q = rng.choice([-1, 1], (nq, bits))
    d = rng.choice([-1, 1], (nd, bits))
    if draw(st.booleans()) and nd > 1:  # exact duplicates in the database
        d[1:] = d[:1]
    return q, rng.integers(0, n_labels, nq), d, rng.integers(0, n_labels, nd)


@settings(max_examples=150, deadline=None)
@given(retrieval_case(), st.integers(1, 5), st.sampled_from([1, 2, 16]))
def test_metrics_match_brute_force(case, radius, chunk):
    q, ql, d, dl = case
    topk = (1, 3, 40)
    report = evaluate_retrieval(q, ql, d, dl, topk=topk, radius=radius, chunk=chunk)
    m, pk, pr, rc = brute_force(q, ql, d, dl, topk, radius)
    assert report.map == pytest.approx(m, abs=1e-9)
    for k in topk:
        assert report.precision_at_k[k] == pytest.approx(pk[k], abs=1e-9)
    assert report.precision_at_radius == pytest.approx(pr, abs=1e-9)
    assert report.recall_at_radius == pytest.approx(rc, abs=1e-9)


def test_ties_are_broken_by_database_index():
    q = np.array([[1, 1, 1, 1]])
    d = np.array([[1, 1, 1, -1], [1, 1, -1, 1]])  # both at distance 1
    # the relevant item comes second in index order: AP = 1/2
    assert evaluate_retrieval(q, [0], d, [1, 0], topk=(1,)).map == pytest.approx(0.5)
    assert evaluate_retrieval(q, [0], d, [0, 1], topk=(1,)).map == pytest.approx(1.0)


def test_zero_one_codes_equal_pm1_codes(rng):
    q, d = rng.integers(0, 2, (5, 16)), rng.integers(0, 2, (20, 16))
    ql, dl = rng.integers(0, 3, 5), rng.integers(0, 3, 20)
    a = evaluate_retrieval(q, ql, d, dl)
    b = evaluate_retrieval(q * 2 - 1, ql, d * 2 - 1, dl)
    assert a.map == b.map and a.precision_at_k == b.precision_at_k


def test_hamming_distances(rng):
    q, d = rng.choice([-1, 1], (4, 48)), rng.choice([-1, 1], (9, 48))
    expected = (q[:, None, :] != d[None, :, :]).sum(-1)
    assert np.array_equal(hamming_distances(q, d), expected)


def test_query_without_relevant_items_is_counted_not_averaged():
    q = np.array([[1, 1], [-1, -1]])
    d = np.array([[1, 1], [1, -1]])
    report = evaluate_retrieval(q, [0, 5], d, [0, 1], topk=(1,))
    assert report.queries_without_relevant == 1
    assert report.map == pytest.approx(1.0)


def test_bad_codes_are_refused():
    with pytest.raises(DataError, match="only"):
        evaluate_retrieval(np.array([[2, 1]]), [0], np.array([[1, 1]]), [0])
    with pytest.raises(DataError, match="bits"):
        evaluate_retrieval(np.ones((1, 4)), [0], np.ones((1, 5)), [0])


def test_bit_agreement(rng):
    a = rng.choice([-1, 1], (10, 8))
    b = a.copy()
    b[:, 3] *= -1
    agree, flips = bit_agreement(a, b)
    assert agree == pytest.approx(7 / 8)
    assert flips[3] == 1.0 and flips.sum() == 1.0
