"""Parity of exported models with the torch model: which bits flip, and what it costs.

For each exported model, on the held-out images of the evaluation split:
bit agreement of ``codes`` with the reference, per-bit flip rate, max |h|
error, the smallest |h| margin of the reference, how many reference bits are
near zero (where a rounding difference may legitimately flip them), how many
flips happen outside that margin, and the mAP of each model.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dagh.eval.metrics import evaluate_retrieval

# |h| below which a flip is attributed to rounding, per precision. FP32 export
# differs from torch by ~1e-6; FP16 carries ~3 decimal digits; INT8 far fewer.
NEAR_ZERO = {"fp32": 1e-4, "fp16": 1e-2, "int8": 5e-2}


@dataclasses.dataclass
class ParityReport:
    name: str                    # file name, e.g. "model.fp16.onnx"
    precision: str
    reference: str               # what it was compared with, e.g. "torch"
    images: int
    bits: int
    bit_agreement: float
    flipped_bits: int
    per_bit_flip_rate: list[float]
    max_abs_h_error: float
    min_abs_h_reference: float   # the smallest |h| margin seen in the reference
    near_zero_tolerance: float
    near_zero_bits: int          # reference bits with |h| <= tolerance
    flips_outside_tolerance: int  # flips where the reference |h| was larger than the tolerance
    map: float | None = None
    reference_map: float | None = None
    bit_agreement_vs_fp32_onnx: float | None = None

    @property
    def map_delta(self) -> float | None:
        if self.map is None or self.reference_map is None:
            return None
        return self.map - self.reference_map

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["map_delta"] = self.map_delta
        return data


def compare_codes(name: str, precision: str, reference: str, ref_h: np.ndarray, codes: np.ndarray,
                  h: np.ndarray) -> ParityReport:
    """Compare a model's codes and h with the reference h (codes = h >= 0)."""
    ref_codes = np.where(ref_h >= 0, 1, -1)
    flips = ref_codes != codes
    tol = NEAR_ZERO[precision]
    near = np.abs(ref_h) <= tol
    return ParityReport(
        name=name, precision=precision, reference=reference, images=int(ref_h.shape[0]),
        bits=int(ref_h.shape[1]), bit_agreement=1.0 - float(flips.mean()), flipped_bits=int(flips.sum()),
        per_bit_flip_rate=[round(float(v), 6) for v in flips.mean(axis=0)],
        max_abs_h_error=float(np.abs(h.astype(np.float64) - ref_h).max()),
        min_abs_h_reference=float(np.abs(ref_h).min()), near_zero_tolerance=tol,
        near_zero_bits=int(near.sum()), flips_outside_tolerance=int((flips & ~near).sum()),
    )


def split_map(codes: np.ndarray, n_queries: int, query_labels: np.ndarray, db_labels: np.ndarray) -> float:
    """mAP with the first ``n_queries`` rows as queries and the rest as the database."""
    return evaluate_retrieval(codes[:n_queries], query_labels, codes[n_queries:], db_labels).map


def fragile_bits(report: ParityReport, top: int = 5) -> list[tuple[int, float]]:
    """The bits that flip most often, as (bit index, flip rate)."""
    rates = np.asarray(report.per_bit_flip_rate)
    order = np.argsort(-rates, kind="stable")[:top]
    return [(int(i), float(rates[i])) for i in order if rates[i] > 0]
