"""INT8 step of dagh-export: calibrate, try the methods, keep the best, report."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dagh.calibration.data import ArrayCalibrationReader, CalibrationSet, build_calibration_set
from dagh.calibration.methods import candidates_for
from dagh.calibration.quantize import inspect_qdq, quantize_qdq, write_ort_tensorrt_table
from dagh.errors import DaghError
from dagh.eval.latency import measure
from dagh.manifest import file_entry
from dagh.runtime.encode.onnxruntime_runner import OnnxRunner
from dagh.runtime.preprocess import PreprocessConfig

INT8_NAME = "model.int8.onnx"
RANGES_NAME = "calibration.ranges.json"


def onnxruntime_latency_ms(path: str | Path, images: np.ndarray, batch: int, repeats: int) -> float:
    """Median wall time of one onnxruntime CPU run at ``batch`` (after one warm-up)."""
    runner = OnnxRunner(path, batch_size=batch)
    x = np.ascontiguousarray(np.resize(images, (batch, *images.shape[1:])))
    return float(np.median(measure(lambda: runner.run(x), warmup=1, iterations=repeats)))


def quantize_for_export(fp32_path: Path, directory: Path, preprocess: PreprocessConfig, options: Any,
                        log: Callable[[str], None] = print, *, source=None,
                        source_name: str | None = None, calibration: CalibrationSet | None = None) -> dict[str, Any]:
    """Write ``model.int8.onnx`` and its calibration files into ``directory``.

    Every candidate method is scored by bit agreement with FP32 on the held-out
    calibration images (never on the evaluation split); the best is kept.
    ``calibration``: the set to use, already built (else built from ``source``).
    """
    calib = calibration or build_calibration_set(source if source is not None else options.calib_data, preprocess,
                                                 options.calib_samples, name=source_name)
    log(f"calibrating INT8 on {len(calib.calibration)} images from {calib.source} "
        f"({len(calib.holdout)} held out to choose the method)")
    reference, _ = OnnxRunner(fp32_path).run(calib.holdout)
    work = directory / ".calibration"
    work.mkdir()
    results, failed = [], []
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's quantizer logs advice at WARNING
    try:
        for candidate in candidates_for(options.calib_method):
            model_path = work / f"{candidate.label}.onnx"
            ranges_path = work / f"{candidate.label}.ranges.json"
            try:
                quantize_qdq(fp32_path, model_path, ArrayCalibrationReader(calib.calibration), candidate,
                             ranges_path=ranges_path)
            except DaghError as exc:
                if options.calib_method != "auto":
                    raise
                # In auto mode one method failing is a result to report, not the end.
                failed.append({"method": candidate.label, "error": str(exc)})
                log(f"  {candidate.label:<18} failed: {exc}")
                continue
            codes, _ = OnnxRunner(model_path).run(calib.holdout)
            agreement = float((codes == reference).mean())
            results.append((agreement, candidate, model_path, ranges_path))
            log(f"  {candidate.label:<18} bit agreement with FP32 on held-out images: {agreement * 100:.3f}%")
    finally:
        logging.getLogger().setLevel(quiet)
    if not results:
        raise DaghError("every INT8 calibration method failed: " + "; ".join(f["error"] for f in failed))
    best = max(results, key=lambda r: r[0])  # first of equals: the candidates' order breaks ties
    agreement, candidate, model_path, ranges_path = best
    log(f"chose {candidate.label} ({agreement * 100:.3f}% on held-out calibration images)")
    shutil.move(model_path, directory / INT8_NAME)
    shutil.move(ranges_path, directory / RANGES_NAME)
    tables = [write_ort_tensorrt_table(directory / RANGES_NAME, directory)]
    shutil.rmtree(work)

    latency = {}
    for precision, path in (("fp32", fp32_path), ("int8", directory / INT8_NAME)):
        for batch, repeats in ((1, 30), (64, 5)):
            latency[f"{precision}_batch{batch}_ms"] = onnxruntime_latency_ms(path, calib.holdout, batch, repeats)
    files = [file_entry(directory, RANGES_NAME, "calibration", "int8",
                        format="onnxruntime TensorsData JSON: per-tensor ranges")]
    # TensorRT's implicit-calibration cache names the TensorRT version that reads it: dagh-engine writes it
    # on the device (dagh.export.calibration_cache).
    formats = {"calibration.flatbuffers": "onnxruntime TensorRT execution provider INT8 table "
                                          "(trt_int8_calibration_table_name)"}
    files += [file_entry(directory, name, "calibration", "int8", format=formats[name]) for name in tables]
    return {
        "method": candidate.label, "requested": options.calib_method, "source": calib.source,
        "calibration_images": int(len(calib.calibration)), "holdout_images": int(len(calib.holdout)),
        "candidates": [{"method": c.label, "holdout_bit_agreement": a} for a, c, _, _ in results] + failed,
        "graph": inspect_qdq(directory / INT8_NAME),
        "onnxruntime_cpu_latency": latency,
        "files": files,
    }
