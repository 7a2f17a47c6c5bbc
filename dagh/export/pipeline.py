"""The export pipeline behind ``dagh-export``: checkpoint -> export directory.

Steps: FP32 ONNX -> (FP16 ONNX) -> (INT8 Q/DQ ONNX) -> parity of each with
torch on the evaluation split -> verification of the FP32 ONNX codes on the
identities dagh-eval uses (the open-set radius for a target FAR, written to
the manifest's ``open_set``) -> (TensorRT engines) -> manifest.json. All files
are written into a hidden temporary directory beside the target, which is
renamed into place only when everything is written, so an interrupted export
never leaves a directory that looks complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dagh import __version__
from dagh._optional import available, require
from dagh.errors import ConfigError, DaghError, DataError
from dagh.eval.verification import (
    VerificationReport,
    VerificationSet,
    evaluate_verification,
    verification_faces,
)
from dagh.fileio import atomic_directory, check_directory_target
from dagh.manifest import MANIFEST_NAME, FileEntry, InputSpec, Manifest, OpenSet, file_entry, sha256_file

ENGINE_MODES = ("auto", "yes", "no")


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What to export; mirrors the dagh-export options."""

    fp16: bool = False
    int8: bool = False
    calib_data: str | None = None      # image folder, 'synthetic' or .npy for INT8 calibration
    calib_method: str = "auto"
    calib_samples: int = 512
    engine: str = "auto"               # auto: build where TensorRT is present, else skip and say why
    max_batch: int = 64
    opt_batch: int = 8
    workspace_mb: int = 1024
    opset: int = 17
    timing_cache: str | None = None    # reused across builds; default: inside the export directory
    force: bool = False
    parity_limit: int | None = None    # cap on query and database images used for parity
    target_far: float = 1e-3           # the false-accept rate the open-set radius is chosen for

    def __post_init__(self) -> None:
        if self.engine not in ENGINE_MODES:
            raise ConfigError(f"--engine must be one of {ENGINE_MODES}, got {self.engine!r}")
        if not 1 <= self.max_batch <= 4096:
            raise ConfigError(f"--max-batch must be in 1..4096, got {self.max_batch}")
        if self.engine == "yes" and not (self.fp16 or self.int8):
            raise ConfigError("--engine yes builds FP16 and INT8 engines: add --fp16 and/or --int8")
        if not 0.0 < self.target_far < 1.0:
            raise ConfigError(f"target_far must be in (0, 1), got {self.target_far!r}")


@dataclasses.dataclass
class ExportResult:
    directory: Path
    manifest: Manifest
    notes: list[str]
    trtexec: list[str]


def _build_env() -> dict[str, Any]:
    env = {"python": platform.python_version(), "platform": platform.platform(), "dagh": __version__}
    for module in ("torch", "onnx", "onnxruntime"):
        with contextlib.suppress(ImportError):
            env[module] = __import__(module).__version__
    return env


def export_checkpoint(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, options: ExportOptions,
                      *, log: Callable[[str], None] = print) -> ExportResult:
    """Export ``checkpoint`` into ``out_dir`` (see module docstring)."""
    import torch

    from dagh.data import DataSource, load_splits
    from dagh.eval.metrics import evaluate_retrieval
    from dagh.export.fp16 import convert_fp16
    from dagh.export.onnx_export import check_opset, export_onnx
    from dagh.export.parity import compare_codes
    from dagh.runtime.encode.onnxruntime_runner import OnnxRunner
    from dagh.runtime.preprocess import preprocess_batch
    from dagh.train.checkpoint import load_checkpoint

    require("onnx", extra="export", purpose="dagh-export")
    require("onnxruntime", extra="export", purpose="dagh-export")
    check_opset(options.opset)
    target = Path(out_dir)
    check_directory_target(target, force=options.force)  # before the slow work, not after
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    mc, pp = ckpt.model_config, ckpt.preprocess
    notes: list[str] = []

    # The evaluation split the parity report and mAP are measured on.
    source = DataSource.from_dict(ckpt.state.get("data", {"kind": "synthetic"}))
    splits = load_splits(source, log=log)
    queries, database = splits.test, splits.train
    vset = verification_faces(source, splits, log=log)
    if options.parity_limit:
        queries = queries.subset(np.arange(min(len(queries), options.parity_limit)))
        database = database.subset(np.arange(min(len(database), options.parity_limit)))
    images = preprocess_batch(np.concatenate([queries.images, database.images]), pp)
    nq = len(queries)
    with torch.no_grad():
        ref_h = np.concatenate([model.continuous_code(torch.from_numpy(images[i:i + 512])).numpy()
                                for i in range(0, len(images), 512)]).astype(np.float64)
    ref_codes = np.where(ref_h >= 0, 1, -1)
    torch_map = evaluate_retrieval(ref_codes[:nq], queries.labels, ref_codes[nq:], database.labels).map

    metadata = {
        "dagh_version": __version__, "code_bits": mc.bits, "model": mc.name, "input_name": "images",
        "input_size": pp.size, "layout": "NCHW", "color_order": pp.color_order,
        "mean": ",".join(map(str, pp.mean)), "std": ",".join(map(str, pp.std)),
        "source_checkpoint_sha256": sha256_file(checkpoint), "codes": "+1/-1 from h >= 0",
    }
    # Written whole into a hidden directory beside the target, renamed into place at the end:
    # a killed export leaves the old directory intact.
    with atomic_directory(target, force=options.force) as partial:
        files: list[FileEntry] = []
        parity: dict[str, Any] = {"torch_map": torch_map, "images": int(len(images)), "queries": nq,
                                  "models": []}
        t0 = time.perf_counter()
        export_onnx(model, pp, partial / "model.onnx", opset=options.opset,
                    metadata={**metadata, "precision": "fp32"})
        log(f"exported model.onnx (opset {options.opset}, {time.perf_counter() - t0:.1f} s)")
        onnx_files = [("model.onnx", "fp32")]
        if options.fp16:
            convert_fp16(partial / "model.onnx", partial / "model.fp16.onnx")
            onnx_files.append(("model.fp16.onnx", "fp16"))
            log("converted model.fp16.onnx")
        calibration_report = None
        calib = None
        if options.int8 or options.fp16:  # INT8 calibrates on it; both keep its held-out part as check crops
            from dagh.calibration.data import build_calibration_set

            calib_source, calib_name = _calibration_source(options, source, splits, log)
            try:
                calib = build_calibration_set(calib_source, pp, options.calib_samples, name=calib_name)
            except DataError as exc:
                if options.int8:
                    raise
                note = (f"no check crops for dagh-engine ({exc}); it will need --no-check, or pass --calib-data "
                        "with 32 or more faces")
                notes.append(note)
                log(note)
        if options.int8:
            from dagh.calibration.pipeline import quantize_for_export

            calibration_report = quantize_for_export(partial / "model.onnx", partial, pp, options, log=log,
                                                     calibration=calib)
            onnx_files.append(("model.int8.onnx", "int8"))
            files.extend(calibration_report.pop("files"))
            latency = calibration_report["onnxruntime_cpu_latency"]
            log("onnxruntime CPU latency FP32 -> INT8: batch 1 {:.2f} -> {:.2f} ms, batch 64 {:.1f} -> {:.1f} ms"
                .format(latency["fp32_batch1_ms"], latency["int8_batch1_ms"], latency["fp32_batch64_ms"],
                        latency["int8_batch64_ms"]))
        fp32_codes = None
        for name, precision in onnx_files:
            runner = OnnxRunner(partial / name)
            codes, h = runner.run(images)
            report = compare_codes(name, precision, "torch", ref_h, codes, h)
            if fp32_codes is None:
                fp32_codes = codes
            report.bit_agreement_vs_fp32_onnx = float((codes == fp32_codes).mean())
            report.reference_map = torch_map
            report.map = evaluate_retrieval(codes[:nq], queries.labels, codes[nq:], database.labels).map
            if not np.array_equal(codes, np.where(h >= 0, 1, -1)):
                raise DaghError(f"{name}: the codes output disagrees with h >= 0; the export is broken")
            parity["models"].append(report.to_dict())
            files.append(file_entry(partial, name, "onnx", precision, opset=options.opset))
        test_codes = fp32_codes[:nq] if nq == len(splits.test) else None  # the whole test split
        verification = _verification(partial / "model.onnx", test_codes, vset, pp, options.target_far)
        reports = {"parity": parity, "verification": {"encoded_by": "model.onnx", **verification.to_dict()}}
        if calib is not None:
            reports["engine_check"] = _write_check_set(partial, calib, onnx_files, files)
        if calibration_report is not None:
            reports["calibration"] = calibration_report
        manifest = Manifest(
            code_bits=mc.bits,
            input=InputSpec(name="images", shape=["N", 3, pp.size, pp.size], dtype="float32", layout="NCHW",
                            color_order=pp.color_order, mean=list(pp.mean), std=list(pp.std),
                            face_template=[list(p) for p in pp.face_template or ()] or None),
            outputs=[{"name": "codes", "shape": ["N", mc.bits], "dtype": "float32", "values": "+1/-1 (h >= 0)"},
                     {"name": "h", "shape": ["N", mc.bits], "dtype": "float32", "values": "continuous code"}],
            files=files, model=mc.to_dict(),
            source={"checkpoint": str(checkpoint), "sha256": metadata["source_checkpoint_sha256"],
                    "epoch": ckpt.epoch, "data": source.to_dict()},
            build=_build_env(), reports=reports, dagh_version=__version__,
            open_set=_open_set(verification))
        trtexec = _engines(partial, manifest, options, notes, log)
        (partial / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return ExportResult(target, manifest, notes, trtexec)


def _write_check_set(directory: Path, calib, onnx_files: list[tuple[str, str]], files: list[FileEntry]) -> dict:
    """Store the check crops (held-out calibration faces, never the evaluation split) and their FP32 ONNX
    codes, which dagh-engine runs each engine on; record how many bits each ONNX flips on them."""
    from dagh.export.engines import CHECK_CODES, CHECK_COUNT, CHECK_CROPS
    from dagh.runtime.encode.onnxruntime_runner import OnnxRunner

    count = min(CHECK_COUNT, len(calib.holdout))
    np.save(directory / CHECK_CROPS, calib.holdout_crops[:count])
    codes = {precision: OnnxRunner(directory / name).run(calib.holdout[:count])[0] for name, precision in onnx_files}
    np.save(directory / CHECK_CODES, codes["fp32"].astype(np.int8))
    files.append(file_entry(directory, CHECK_CROPS, "check-crops", None,
                            format="uint8 [N, H, W, 3] RGB face crops, held out from INT8 calibration"))
    files.append(file_entry(directory, CHECK_CODES, "check-codes", "fp32", format="int8 +1/-1 codes of model.onnx"))
    return {"crops": count, "source": calib.source,
            "onnx_flip_rate": {p: float((c != codes["fp32"]).mean()) for p, c in codes.items() if p != "fp32"}}


def _calibration_source(options: ExportOptions, source, splits, log):
    """What INT8 calibrates on: ``calib_data`` when given; else faces like the checkpoint's, never its
    query split: the synthetic generator's own calibration faces (a seed of their own), or the training
    split of the image folder / pickles the checkpoint was trained on (training images, as calibration
    usually takes; the queries stay unseen)."""
    if options.calib_data:
        return options.calib_data, options.calib_data
    if source.kind == "synthetic":
        log("calibration data: synthetic faces like the checkpoint's (their own seed, not the evaluation split)")
        return "synthetic", "synthetic"
    name = f"the training split of {source.path}"
    log(f"calibration data: {name} (the checkpoint's data; pass calib_data to choose others)")
    return splits.train, name


def _verification(onnx_path: Path, test_codes: np.ndarray | None, vset: VerificationSet, pp: Any,
                  target_far: float) -> VerificationReport:
    """Verification of the FP32 ONNX codes on ``vset``: reuses the parity codes of the whole test split
    (``test_codes``) when that is the set, else encodes the set's faces once."""
    from dagh.runtime.encode.onnxruntime_runner import OnnxRunner
    from dagh.runtime.preprocess import preprocess_batch

    codes = test_codes
    if vset.unseen or codes is None:
        codes, _ = OnnxRunner(onnx_path).run(preprocess_batch(vset.faces.images, pp))
    return evaluate_verification(codes, vset.faces.labels, target_far=target_far,
                                 identity_set=vset.description)


def _open_set(report: VerificationReport) -> OpenSet:
    point = report.target
    return OpenSet(radius=point.radius, target_far=point.target_far, measured_far=point.far, tar=point.tar,
                   genuine_pairs=report.genuine_pairs, impostor_pairs=report.impostor_pairs,
                   identities=report.identity_set, far_measurable=point.far_measurable)


def _engines(directory: Path, manifest: Manifest, options: ExportOptions, notes: list[str],
             log: Callable[[str], None]) -> list[str]:
    """Build and check TensorRT engines for the FP16 / INT8 ONNX files (dagh-engine's code), or say why not;
    return the equivalent trtexec commands."""
    from dagh.export.engines import (
        EngineSettings,
        build_plans,
        commit_engines,
        engine_plans,
        installed_tensorrt_major,
        trtexec_commands,
    )

    settings = EngineSettings(max_batch=options.max_batch, opt_batch=options.opt_batch,
                              workspace_mb=options.workspace_mb,
                              timing_cache=options.timing_cache)
    plans = engine_plans(manifest, settings)
    commands = trtexec_commands(plans, installed_tensorrt_major())
    if options.engine == "no" or not plans:
        return commands
    if not (available("tensorrt") and available("cuda.bindings.runtime")):
        if options.engine == "yes":
            require("tensorrt", extra="tensorrt", purpose="--engine yes")
            require("cuda.bindings.runtime", extra="tensorrt", purpose="--engine yes")
        note = ("skipping TensorRT engines: tensorrt and cuda-python are not installed here (build them on the "
                "device with dagh-engine, or install dagh[tensorrt])")
        notes.append(note)
        log(note)
        return commands
    try:
        staged = build_plans(directory, manifest, plans, settings, log)
    except DaghError as exc:
        if options.engine == "yes":
            raise
        note = f"skipping TensorRT engines: {exc}"
        notes.append(note)
        log(note)
        return commands
    version = str(importlib.import_module("tensorrt").__version__)
    commit_engines(directory, manifest, staged, version, log, write_manifest=False)  # the caller writes it
    for b in staged.built:
        log(f"built {b.entry.path} with TensorRT {version} on {b.entry.details.get('gpu_name')}")
    return commands
