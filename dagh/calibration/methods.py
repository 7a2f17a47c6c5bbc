"""Calibration methods: an enum, candidate settings, and the onnxruntime arguments for each."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from dagh.errors import ConfigError


class CalibMethod(enum.Enum):
    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


# The percentiles tried by --calib-method auto (and the one used by plain "percentile").
AUTO_PERCENTILES = (99.9, 99.99, 99.999)
DEFAULT_PERCENTILE = 99.99


@dataclasses.dataclass(frozen=True)
class CalibCandidate:
    """One calibration setting to try."""

    method: CalibMethod
    percentile: float | None = None

    @property
    def label(self) -> str:
        return f"percentile-{self.percentile:g}" if self.method is CalibMethod.PERCENTILE else self.method.value

    def ort_arguments(self) -> tuple[Any, dict[str, Any]]:
        """(onnxruntime CalibrationMethod, calibrator extra_options)."""
        from onnxruntime.quantization import CalibrationMethod

        if self.method is CalibMethod.MINMAX:
            return CalibrationMethod.MinMax, {}
        if self.method is CalibMethod.ENTROPY:
            return CalibrationMethod.Entropy, {"CalibNumBins": 2048}
        return CalibrationMethod.Percentile, {"CalibPercentile": float(self.percentile),
                                              "CalibNumBins": 2048}


def candidates_for(method: str) -> list[CalibCandidate]:
    """The candidates ``--calib-method`` names: one for a method, several for ``auto``."""
    if method == "auto":
        return ([CalibCandidate(CalibMethod.MINMAX), CalibCandidate(CalibMethod.ENTROPY)]
                + [CalibCandidate(CalibMethod.PERCENTILE, p) for p in AUTO_PERCENTILES])
    try:
        chosen = CalibMethod(method)
    except ValueError:
        raise ConfigError(f"unknown calibration method {method!r}; choose auto, "
                          + ", ".join(m.value for m in CalibMethod)) from None
    return [CalibCandidate(chosen, DEFAULT_PERCENTILE if chosen is CalibMethod.PERCENTILE else None)]
