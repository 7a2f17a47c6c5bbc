"""Measure encode, search and end-to-end latency of an export directory on this device.

Every configuration that cannot run here (a precision the export lacks, a
backend that is not installed, no GPU) is recorded as skipped with the reason.
A Ctrl-C stops measuring and returns what was measured so far.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dagh.errors import ConfigError, DaghError
from dagh.eval.latency import measure, summarize
from dagh.manifest import load_manifest

SCHEMA = "dagh-profile"
SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ProfileOptions:
    precisions: tuple[str, ...] | None = None  # None: every precision the export has
    backends: tuple[str, ...] = ("auto",)
    batches: tuple[int, ...] = (1, 8, 32)
    galleries: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    ks: tuple[int, ...] = (1, 10, 100)
    index_backends: tuple[str, ...] = ("cpu", "gpu")
    faces: tuple[int, ...] = (1, 5)   # faces in the recognizer's 640x480 frame (dagh.profile.frames)
    detector: str = "retinaface"
    duration: float | None = None     # seconds per configuration (0.5 when neither is given) ...
    iterations: int | None = None     # ... or a fixed count
    warmup: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.duration is not None and self.iterations is not None:
            raise ConfigError("give --duration or --iterations, not both")
        if self.duration is None and self.iterations is None:
            object.__setattr__(self, "duration", 0.5)
        if any(b < 1 for b in self.batches) or any(g < 1 for g in self.galleries) or any(k < 1 for k in self.ks):
            raise ConfigError("batch sizes, gallery sizes and k must be positive")

    def timing(self) -> dict[str, Any]:
        return {"warmup": self.warmup, "iterations": self.iterations, "duration": self.duration}


def _skip(entry: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**entry, "status": "skipped", "reason": reason}


class Profiler:
    """Runs the measurements; ``report`` fills in as they complete."""

    def __init__(self, export_dir: str | Path, options: ProfileOptions,
                 on_step: Callable[[str], None] | None = None):
        from dagh.profile.environment import environment

        self.directory = Path(export_dir)
        self.manifest = load_manifest(self.directory)
        self.options = options
        self.on_step = on_step or (lambda label: None)
        present = [f.precision for f in self.manifest.files if f.kind == "onnx"]
        self.precisions = list(options.precisions or present)
        self.rng = np.random.default_rng(options.seed)
        self.samples: dict[str, np.ndarray] = {}  # raw samples for plots, keyed by label
        self.report: dict[str, Any] = {
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
            "export": {"path": str(self.directory), "code_bits": self.manifest.code_bits,
                       "input_size": self.manifest.input.size},
            "environment": environment(),
            "settings": {**dataclasses.asdict(options), "precisions": self.precisions},
            "encode": [], "search": [], "end_to_end": [], "recognizer": [], "interrupted": False,
        }

    # -- steps ------------------------------------------------------------------
    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        o = self.options
        steps = [(f"encode {p} {b} batch {n}", lambda p=p, b=b, n=n: self.encode(p, b, n))
                 for p in self.precisions for b in o.backends for n in o.batches]
        steps += [(f"search {ib} N={g} k={k}", lambda ib=ib, g=g, k=k: self.search(ib, g, k))
                  for ib in o.index_backends for g in o.galleries for k in o.ks]
        steps += [(f"end-to-end {p} {b}", lambda p=p, b=b: self.end_to_end(p, b))
                  for p in self.precisions for b in o.backends]
        steps += [(f"recognizer {p} {b} {f} faces", lambda p=p, b=b, f=f: self.recognizer(p, b, f))
                  for p in self.precisions for b in o.backends for f in o.faces]
        return steps

    def run(self) -> dict[str, Any]:
        try:
            for label, step in self.steps():
                self.on_step(label)
                step()
        except KeyboardInterrupt:
            self.report["interrupted"] = True
        return self.report

    def _open_or_skip(self, section: str, entry: dict[str, Any], build: Callable[[], Any]) -> Any:
        """``build()``, or None after recording ``entry`` as skipped with the reason."""
        try:
            return build()
        except DaghError as exc:
            self.report[section].append(_skip(entry, str(exc)))
            return None

    def _time(self, fn: Callable[[], object]) -> np.ndarray:
        o = self.options
        return measure(fn, warmup=o.warmup, iterations=o.iterations, duration=o.duration)

    def _encoder(self, precision: str, backend: str):
        from dagh.runtime.encode.encoder import Encoder

        return Encoder.open(self.directory, precision=precision, backend=backend, verify=False)

    def _crops(self, n: int) -> np.ndarray:
        size = self.manifest.input.size
        return self.rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)

    def encode(self, precision: str, backend: str, batch: int) -> None:
        from dagh.runtime.bits import pack_codes
        from dagh.runtime.preprocess import preprocess_batch

        entry = {"precision": precision, "backend": backend, "batch": batch}
        encoder = self._open_or_skip("encode", entry, lambda: self._encoder(precision, backend))
        if encoder is None:
            return
        crops = self._crops(batch)
        parts: dict[str, list[float]] = {"preprocess": [], "inference": [], "packing": []}

        def once():
            import time

            t0 = time.perf_counter()
            x = preprocess_batch(crops, encoder.preprocess)
            t1 = time.perf_counter()
            codes, _ = encoder.infer(x)
            t2 = time.perf_counter()
            pack_codes(codes > 0)
            t3 = time.perf_counter()
            parts["preprocess"].append((t1 - t0) * 1e3)
            parts["inference"].append((t2 - t1) * 1e3)
            parts["packing"].append((t3 - t2) * 1e3)

        samples = self._time(once)
        keep = len(samples)
        split = {name: float(np.median(values[-keep:])) for name, values in parts.items()}
        # onnxruntime hides its copies inside inference; the TensorRT runner could time them.
        split.update(host_to_device=None, device_to_host=None)
        self.samples[f"encode {precision} batch {batch}"] = samples
        self.report["encode"].append({**entry, "status": "ok", "resolved_backend": encoder.backend,
                                      "providers": encoder.providers,
                                      "latency": summarize(samples, batch).to_dict(), "split_p50_ms": split})

    def _gallery_index(self, backend: str, size: int):
        from dagh.runtime.search.index import HammingIndex

        bits = self.manifest.code_bits
        index = HammingIndex(bits, backend=backend)
        index.add(self.rng.integers(0, 256, (size, (bits + 7) // 8), dtype=np.uint8))
        return index

    def search(self, backend: str, gallery: int, k: int) -> None:
        entry = {"index_backend": backend, "gallery": gallery, "k": k}
        index = self._open_or_skip("search", entry, lambda: self._gallery_index(backend, gallery))
        if index is None:
            return
        bits = self.manifest.code_bits
        query = self.rng.integers(0, 256, (1, (bits + 7) // 8), dtype=np.uint8)
        samples = self._time(lambda: index.search(query, k))
        stats = summarize(samples)
        seconds = stats.p50_ms / 1e3
        self.samples[f"search {backend} N={gallery} k={k}"] = samples
        self.report["search"].append({
            **entry, "status": "ok", "latency": stats.to_dict(),
            "codes_per_s": gallery / seconds, "gb_per_s": gallery * index.scanned_bytes_per_code / seconds / 1e9})

    def end_to_end(self, precision: str, backend: str) -> None:
        """One camera frame: preprocess + encode + search (SingleStream p90), and Offline throughput."""
        gallery = max(self.options.galleries)
        entry = {"precision": precision, "backend": backend, "gallery": gallery, "index_backend": "cpu"}
        parts = self._open_or_skip("end_to_end", entry, lambda: (self._encoder(precision, backend),
                                                                  self._gallery_index("cpu", gallery)))
        if parts is None:
            return
        encoder, index = parts
        frame = self._crops(1)
        samples = self._time(lambda: index.search(encoder.encode(frame), 1))
        batch = max(self.options.batches)
        crops = self._crops(batch)
        offline = self._time(lambda: index.search(encoder.encode(crops), 1))
        self.samples[f"end-to-end {precision}"] = samples
        single = summarize(samples)
        self.report["end_to_end"].append({
            **entry, "status": "ok", "latency": single.to_dict(), "single_stream_p90_ms": single.p90_ms,
            "offline_batch": batch, "offline_frames_per_s": summarize(offline, batch).throughput})


    def recognizer(self, precision: str, backend: str, faces: int) -> None:
        """One 640x480 frame with ``faces`` real faces through the Recognizer: p50/p90 per stage, frames/s.

        The gallery holds the smallest profiled gallery size of random codes (a camera app's people)."""
        from dagh.profile.frames import composed_frame

        gallery = min(self.options.galleries)
        entry = {"precision": precision, "backend": backend, "faces": faces, "gallery": gallery,
                 "detector": self.options.detector}

        def build():
            from dagh.runtime.face.detectors import open_detector
            from dagh.runtime.recognizer import Recognizer

            encoder = self._encoder(precision, backend)
            return Recognizer(encoder, self._gallery_index("cpu", gallery), None,
                              open_detector(self.options.detector), radius=encoder.bits // 8)

        recognizer = self._open_or_skip("recognizer", entry, build)
        if recognizer is None:
            return
        frame = composed_frame(faces)
        found = len(recognizer.recognize(frame, color_order="RGB"))
        stages: dict[str, list[float]] = {"detect": [], "align": [], "encode": [], "search": []}

        def once():
            _, took = recognizer.recognize_timed(frame, color_order="RGB")
            for name in stages:
                stages[name].append(getattr(took, name) * 1e3)

        samples = self._time(once)
        keep = len(samples)
        per_stage = {name: {"p50_ms": float(np.percentile(v[-keep:], 50)), "p90_ms": float(np.percentile(v[-keep:], 90))}
                     for name, v in stages.items()}
        self.samples[f"recognizer {precision} {faces} faces"] = samples
        stats = summarize(samples)
        self.report["recognizer"].append({**entry, "status": "ok", "found": found, "latency": stats.to_dict(),
                                          "stages": per_stage, "frames_per_s": stats.throughput})


def profile(export_dir: str | Path, options: ProfileOptions) -> dict[str, Any]:
    return Profiler(export_dir, options).run()
