"""Retrieval metrics over binary codes, in plain numpy (no torch).

Codes are [n, K] arrays of +1/-1 (or 0/1) values. The database is ranked by
Hamming distance to each query, ties broken by database index (a stable sort),
so every figure is deterministic. Work is done in chunks of queries, so memory
is chunk x database, not queries x database.

- mAP: average precision over the whole ranked database, averaged over the
  queries that have at least one relevant database item.
- precision@k: share of the first k ranked items that are relevant.
- radius r (default 2): precision and recall of the items within Hamming
  distance r; a query that retrieves nothing has precision 0 (DDH convention).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from dagh.errors import DataError


@dataclasses.dataclass
class RetrievalReport:
    """Retrieval figures of one query set against one database."""

    bits: int
    queries: int
    database: int
    map: float
    precision_at_k: dict[int, float]
    radius: int
    precision_at_radius: float
    recall_at_radius: float
    queries_without_relevant: int  # left out of mAP

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["precision_at_k"] = {str(k): v for k, v in self.precision_at_k.items()}
        return data


def _as_pm1(codes: np.ndarray, name: str) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise DataError(f"{name} codes must be a 2-D [n, bits] array, got shape {codes.shape}")
    values = np.unique(codes)
    if np.all(np.isin(values, (-1, 1))):
        return codes.astype(np.int16)
    if np.all(np.isin(values, (0, 1))):
        return (codes.astype(np.int16) * 2 - 1)
    raise DataError(f"{name} codes must hold only +1/-1 or 0/1 values, found {values[:5]}")


def hamming_distances(queries: np.ndarray, database: np.ndarray) -> np.ndarray:
    """[nq, nd] Hamming distances between +1/-1 code arrays (uint16)."""
    q = _as_pm1(queries, "query").astype(np.float32)
    d = _as_pm1(database, "database").astype(np.float32)
    if q.shape[1] != d.shape[1]:
        raise DataError(f"query codes have {q.shape[1]} bits but database codes {d.shape[1]}")
    # For +1/-1 codes, <q, d> = K - 2 * hamming; exact in float32 for K <= 2^24.
    return np.rint((q.shape[1] - q @ d.T) * 0.5).astype(np.uint16)


def rank_database(distances: np.ndarray) -> np.ndarray:
    """Database indices ordered by distance, ties by index (stable radix sort of uint16)."""
    return np.argsort(distances, axis=1, kind="stable")


def evaluate_retrieval(query_codes: np.ndarray, query_labels: np.ndarray, db_codes: np.ndarray,
                       db_labels: np.ndarray, *, topk: Sequence[int] = (1, 10, 100), radius: int = 2,
                       chunk: int = 256) -> RetrievalReport:
    """mAP, precision@k and radius precision/recall of queries against a database."""
    q = _as_pm1(query_codes, "query")
    d = _as_pm1(db_codes, "database")
    q_labels = np.asarray(query_labels).reshape(-1)
    d_labels = np.asarray(db_labels).reshape(-1)
    if len(q) != len(q_labels) or len(d) != len(d_labels):
        raise DataError("each code needs exactly one label")
    if len(q) == 0 or len(d) == 0:
        raise DataError("retrieval needs at least one query and one database code")
    ks = sorted({int(k) for k in topk})
    if any(k < 1 for k in ks):
        raise DataError(f"precision@k needs k >= 1, got {ks}")
    ap_sum, ap_count = 0.0, 0
    pk_sum = {k: 0.0 for k in ks}
    pr_sum = rc_sum = 0.0
    for start in range(0, len(q), chunk):
        dist = hamming_distances(q[start:start + chunk], d)
        labels = q_labels[start:start + chunk]
        order = rank_database(dist)
        relevant = d_labels[order] == labels[:, None]
        hits = np.cumsum(relevant, axis=1, dtype=np.int64)
        ranks = np.arange(1, len(d) + 1, dtype=np.float64)
        n_rel = hits[:, -1]  # relevant items in the whole database
        has_rel = n_rel > 0
        ap = (hits / ranks * relevant).sum(axis=1)
        ap_sum += float((ap[has_rel] / n_rel[has_rel]).sum())
        ap_count += int(has_rel.sum())
        for k in ks:
            kk = min(k, len(d))
            pk_sum[k] += float((hits[:, kk - 1] / k).sum())
        within = dist <= radius
        retrieved = within.sum(axis=1)
        rel_within = (within & (d_labels[None, :] == labels[:, None])).sum(axis=1)
        pr_sum += float(np.where(retrieved > 0, rel_within / np.maximum(retrieved, 1), 0.0).sum())
        rc_sum += float(np.where(n_rel > 0, rel_within / np.maximum(n_rel, 1), 0.0).sum())
    nq = len(q)
    return RetrievalReport(
        bits=int(q.shape[1]), queries=nq, database=len(d),
        map=ap_sum / ap_count if ap_count else 0.0,
        precision_at_k={k: pk_sum[k] / nq for k in ks},
        radius=radius, precision_at_radius=pr_sum / nq,
        recall_at_radius=rc_sum / max(1, ap_count),
        queries_without_relevant=nq - ap_count,
    )


def bit_agreement(codes_a: np.ndarray, codes_b: np.ndarray) -> tuple[float, np.ndarray]:
    """Share of equal bits between two code arrays, and the flip rate of each bit."""
    a, b = _as_pm1(codes_a, "first"), _as_pm1(codes_b, "second")
    if a.shape != b.shape:
        raise DataError(f"code arrays differ in shape: {a.shape} vs {b.shape}")
    flips = a != b
    return 1.0 - float(flips.mean()), flips.mean(axis=0)
