"""Verification over binary codes, in plain numpy (no torch): genuine and impostor Hamming distances.

Every unordered pair of codes in one set is either *genuine* (same identity)
or an *impostor* pair (different identities). The histograms count the pairs
at each Hamming distance 0..bits, exactly: all pairs, scanned in blocks of
rows (memory is block x block, never n x n), XOR and popcount on packed
words (``np.bitwise_count``). No sampling.

A face is accepted at radius ``r`` when its distance is ``<= r`` (Hamming
bits). At radius r the false-accept rate (FAR) is the share of impostor pairs
within r, and the true-accept rate (TAR) the share of genuine pairs within r.
``radius_for_far(target)`` is the largest integer radius whose FAR is
``<= target``; -1 (accept nothing) when even identical codes are too common
among impostors. A FAR of ``target`` is measurable only on at least
``MIN_PAIRS_FACTOR / target`` impostor pairs (10 false accepts to count);
fewer raise the ``far_measurable`` flag instead of a silent number.

The EER is where FAR and the false-reject rate (1 - TAR) cross, linearly
interpolated between neighbouring integer radii.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dagh.errors import ConfigError, DataError
from dagh.runtime.bits import check_packed, pack_codes, to_words

if TYPE_CHECKING:  # numpy-only at import time
    from dagh.data import DataSource, FaceSet, Splits

__all__ = ["FARS", "MIN_PAIRS_FACTOR", "SEEN_TEST_SPLIT", "UNSEEN_SYNTHETIC", "OperatingPoint",
           "VerificationReport", "VerificationSet", "distance_histograms", "evaluate_verification",
           "min_impostor_pairs", "verification_faces"]

FARS = (1e-2, 1e-3, 1e-4)   # the FARs TAR is reported at
MIN_PAIRS_FACTOR = 10       # a FAR f needs >= MIN_PAIRS_FACTOR / f impostor pairs to be measured
UNSEEN_SYNTHETIC = "unseen synthetic identities"
SEEN_TEST_SPLIT = "test split (identities seen in training)"
_UNSEEN_SEED_KEY = 0xDA6  # mixed with the data seed: identity parameters no training set draws
_BLOCK_ELEMENTS = 1 << 22  # uint64 words per XOR block: 32 MiB


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
    """The decision at one target FAR: accept when distance <= ``radius`` (Hamming bits)."""

    target_far: float
    radius: int             # -1: not even distance 0 meets the target; accept nothing
    far: float              # measured at radius
    tar: float              # measured at radius
    far_measurable: bool    # impostor pairs >= MIN_PAIRS_FACTOR / target_far

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class VerificationReport:
    """Genuine and impostor distance histograms of one code set and the figures read from them."""

    bits: int
    codes: int
    num_identities: int
    genuine_histogram: tuple[int, ...]    # pairs at each distance 0..bits
    impostor_histogram: tuple[int, ...]
    eer: float
    points: tuple[OperatingPoint, ...]    # at FARS
    target: OperatingPoint                # at the target FAR (the open-set radius)
    identity_set: str = ""                # which identities, e.g. UNSEEN_SYNTHETIC

    @property
    def genuine_pairs(self) -> int:
        return sum(self.genuine_histogram)

    @property
    def impostor_pairs(self) -> int:
        return sum(self.impostor_histogram)

    @property
    def tar_at_far(self) -> dict[float, float]:
        return {p.target_far: p.tar for p in self.points}

    def radius_for_far(self, target: float) -> int:
        """The largest radius (Hamming bits) whose impostor rate of distance <= radius is <= ``target``;
        -1 if none."""
        return _radius(_cumulative(self.impostor_histogram), _check_far(target))

    def operating_point(self, target: float) -> OperatingPoint:
        """Radius, measured FAR and TAR, and the measurability flag at ``target`` FAR."""
        return _point(self.genuine_histogram, self.impostor_histogram, target)

    def to_dict(self) -> dict[str, Any]:
        return {"bits": self.bits, "codes": self.codes, "num_identities": self.num_identities,
                "identity_set": self.identity_set, "genuine_pairs": self.genuine_pairs,
                "impostor_pairs": self.impostor_pairs, "eer": self.eer,
                "tar_at_far": {f"{p.target_far:g}": p.tar for p in self.points},
                "points": [p.to_dict() for p in self.points], "target": self.target.to_dict(),
                "genuine_histogram": list(self.genuine_histogram),
                "impostor_histogram": list(self.impostor_histogram)}


def min_impostor_pairs(target_far: float) -> int:
    """Impostor pairs needed to measure a FAR of ``target_far``: MIN_PAIRS_FACTOR / target_far (10 false
    accepts expected), rounded up."""
    return math.ceil(round(MIN_PAIRS_FACTOR / _check_far(target_far), 6))


def _check_far(target: float) -> float:
    target = float(target)
    if not 0.0 < target < 1.0:
        raise ConfigError(f"a target FAR must be in (0, 1), got {target!r}")
    return target


def _cumulative(hist: Sequence[int]) -> np.ndarray:
    """Share of pairs with distance <= r, for r = 0..bits."""
    counts = np.cumsum(np.asarray(hist, dtype=np.int64))
    return counts / counts[-1]


def _radius(impostor_rate: np.ndarray, target: float) -> int:
    # impostor_rate is non-decreasing: the last radius at or under the target
    return int(np.searchsorted(impostor_rate, target, side="right")) - 1


def _point(genuine: Sequence[int], impostor: Sequence[int], target: float) -> OperatingPoint:
    target = _check_far(target)
    far, tar = _cumulative(impostor), _cumulative(genuine)
    r = _radius(far, target)
    return OperatingPoint(target_far=target, radius=r, far=float(far[r]) if r >= 0 else 0.0,
                          tar=float(tar[r]) if r >= 0 else 0.0,
                          far_measurable=sum(impostor) >= min_impostor_pairs(target))


def _eer(genuine: Sequence[int], impostor: Sequence[int]) -> float:
    # Radii -1 (accept nothing: FAR 0, FRR 1) to bits (accept all: FAR 1, FRR 0).
    far = np.concatenate([[0.0], _cumulative(impostor)])
    frr = 1.0 - np.concatenate([[0.0], _cumulative(genuine)])
    diff = far - frr   # non-decreasing, from -1 to +1
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0:
        return float(far[i])
    t = -diff[i - 1] / (diff[i] - diff[i - 1])
    return float(far[i - 1] + t * (far[i] - far[i - 1]))


def _words(codes: np.ndarray, bits: int | None) -> tuple[np.ndarray, int]:
    if bits is not None:
        return to_words(check_packed(codes, bits), bits), int(bits)
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] < 1:
        raise DataError(f"codes must be a 2-D [n, bits] array of +1/-1 or 0/1, got shape {codes.shape}; "
                        "pass bits= for packed uint8 rows")
    values = np.unique(codes)
    if not (np.isin(values, (-1, 1)).all() or np.isin(values, (0, 1)).all()):
        raise DataError(f"codes must hold only +1/-1 or 0/1 values, found {values[:5]}")
    return to_words(pack_codes(codes), codes.shape[1]), int(codes.shape[1])


def distance_histograms(codes: np.ndarray, labels: np.ndarray, *, bits: int | None = None,
                        block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor pair counts at each Hamming distance 0..bits (int64 [bits + 1] each).

    ``codes``: [n, bits] of +1/-1 or 0/1, or, with ``bits``, packed uint8 rows
    (dagh.runtime.bits.pack_codes). ``labels``: [n] identity labels. Every
    unordered pair i < j is counted once. ``block``: rows per block; defaults to
    what keeps one XOR block near 32 MiB.
    """
    words, bits = _words(codes, bits)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(words):
        raise DataError(f"{len(words)} codes but {len(labels)} labels: each code needs exactly one label")
    n, width = words.shape
    block = block or max(64, int(math.sqrt(_BLOCK_ELEMENTS / width)))
    counts = np.zeros(2 * (bits + 1), dtype=np.int64)   # index 2 * distance + genuine
    for a in range(0, n, block):
        wa, la = words[a:a + block], labels[a:a + block]
        for b in range(a, n, block):
            wb, lb = words[b:b + block], labels[b:b + block]
            dist = np.bitwise_count(wa[:, None, :] ^ wb[None, :, :]).sum(axis=2, dtype=np.int64)
            key = 2 * dist + (la[:, None] == lb[None, :])
            if a == b:
                key = key[np.arange(len(wa))[:, None] < np.arange(len(wb))[None, :]]
            counts += np.bincount(key.ravel(), minlength=len(counts))
    return counts[1::2], counts[0::2]


def evaluate_verification(codes: np.ndarray, labels: np.ndarray, *, bits: int | None = None,
                          target_far: float = 1e-3, fars: Sequence[float] = FARS,
                          identity_set: str = "") -> VerificationReport:
    """TAR at ``fars`` (default 1e-2, 1e-3, 1e-4), the EER and the radius (Hamming bits) for ``target_far``
    (default 1e-3) over all pairs of ``codes`` (see distance_histograms for formats).

    ``identity_set`` says which identities the codes are of, for the report.
    DataError when there is no genuine or no impostor pair.
    """
    genuine, impostor = distance_histograms(codes, labels, bits=bits)
    if genuine.sum() == 0 or impostor.sum() == 0:
        raise DataError(f"verification needs genuine and impostor pairs; got {int(genuine.sum())} genuine "
                        f"and {int(impostor.sum())} impostor pairs: give at least two identities and two "
                        "codes of one identity")
    g, i = tuple(int(c) for c in genuine), tuple(int(c) for c in impostor)
    return VerificationReport(
        bits=len(g) - 1, codes=int(np.asarray(labels).size), num_identities=len(np.unique(labels)),
        genuine_histogram=g, impostor_histogram=i, eer=_eer(g, i),
        points=tuple(_point(g, i, f) for f in fars), target=_point(g, i, target_far),
        identity_set=identity_set)


@dataclasses.dataclass(frozen=True)
class VerificationSet:
    """The faces verification is measured on, and which identities they are."""

    faces: FaceSet
    description: str   # UNSEEN_SYNTHETIC or SEEN_TEST_SPLIT
    unseen: bool       # True: identities the model did not train on


def verification_faces(source: DataSource, splits: Splits | None = None, *, identities: int = 200,
                       per_identity: int = 4, log: Callable[[str], None] = print) -> VerificationSet:
    """The faces dagh-eval and dagh-export measure verification on.

    For synthetic data: ``identities`` (default 200) fresh identities x ``per_identity``
    (default 4) images, drawn by the same generator from a seed the training set
    never uses (the data seed mixed with a fixed key), so the model has not seen
    them. Otherwise the test split of ``splits`` (loaded from ``source`` if not
    given; ``log`` gets its loading notes): identities seen in training.
    """
    if source.kind == "synthetic":
        from dagh.data import FaceSet
        from dagh.data.synthetic import SyntheticConfig, render_identity_images, sample_identities

        params_seed, render_seed = np.random.SeedSequence([source.seed, _UNSEEN_SEED_KEY]).spawn(2)
        params = sample_identities(identities, np.random.default_rng(params_seed),
                                   SyntheticConfig().lookalike_fraction)
        images, labels = render_identity_images(params, per_identity, source.size,
                                                np.random.default_rng(render_seed))
        names = [f"unseen-{i:05d}" for i in range(identities)]
        return VerificationSet(FaceSet(images, labels, names), UNSEEN_SYNTHETIC, True)
    if splits is None:
        from dagh.data import load_splits

        splits = load_splits(source, log=log)
    return VerificationSet(splits.test, SEEN_TEST_SPLIT, False)
