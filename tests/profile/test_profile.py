import json
import time

import numpy as np
import pytest
from click.testing import CliRunner

from dagh.cli import profile as profile_cli
from dagh.errors import ConfigError
from dagh.eval.latency import measure, summarize
from dagh.profile.runner import ProfileOptions, Profiler
from dagh.profile.schema import PROFILE_SCHEMA, validate

SMALL = dict(batches=(1, 2), galleries=(500, 3000), ks=(1, 5), index_backends=("cpu", "gpu"))


def test_percentiles_on_a_known_sample():
    stats = summarize(np.arange(1, 101, dtype=float), items_per_sample=4)  # 1..100 ms
    assert stats.count == 100
    assert stats.p50_ms == pytest.approx(50.5) and stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01) and stats.max_ms == 100 and stats.mean_ms == pytest.approx(50.5)
    assert stats.throughput == pytest.approx(4 * 1000 / 50.5)
    assert summarize([7.0]).p99_ms == 7.0


def test_iterations_and_duration_bounds():
    calls = []
    samples = measure(lambda: calls.append(1), warmup=2, iterations=7)
    assert len(samples) == 7 and len(calls) == 9
    t0 = time.perf_counter()
    samples = measure(lambda: time.sleep(0.01), warmup=0, duration=0.2)
    elapsed = time.perf_counter() - t0
    assert 0.2 <= elapsed < 0.4 and 10 <= len(samples) <= 21
    with pytest.raises(ConfigError):
        measure(lambda: None, iterations=3, duration=1.0)
    with pytest.raises(ConfigError):
        ProfileOptions(duration=1.0, iterations=3)
    assert ProfileOptions().duration == 0.5


def test_report_follows_the_schema_and_skips_with_reasons(export_dir):
    profiler = Profiler(export_dir, ProfileOptions(precisions=("fp32", "int8"), iterations=3, **SMALL))
    report = profiler.run()
    assert validate(report) == []
    ok = [e for e in report["encode"] if e["status"] == "ok"]
    assert {e["batch"] for e in ok} == {1, 2} and all(e["latency"]["count"] == 3 for e in ok)
    int8 = [e for e in report["encode"] if e["precision"] == "int8"]
    assert int8 and all(e["status"] == "skipped" and "int8" in e["reason"] for e in int8)
    gpu = [e for e in report["search"] if e["index_backend"] == "gpu"]
    try:
        from numba import cuda
        has_gpu = cuda.is_available()
    except ImportError:
        has_gpu = False
    if not has_gpu:
        assert all(e["status"] == "skipped" and e["reason"] for e in gpu)
    cpu = [e for e in report["search"] if e["index_backend"] == "cpu"]
    assert len(cpu) == 4 and all(e["codes_per_s"] > 0 for e in cpu)
    e2e = next(e for e in report["end_to_end"] if e["precision"] == "fp32")
    assert e2e["single_stream_p90_ms"] > 0 and e2e["offline_frames_per_s"] > 0
    frames = {e["faces"]: e for e in report["recognizer"] if e["precision"] == "fp32"}
    assert set(frames) == {1, 5}
    for faces, e in frames.items():
        if e["status"] == "skipped":  # only where the detector's weights are not installed
            assert "dagh[face]" in e["reason"]
            continue
        assert e["found"] == faces and e["frames_per_s"] > 0
        assert all(e["stages"][s]["p90_ms"] >= e["stages"][s]["p50_ms"] >= 0 for s in e["stages"])
    assert all(e["status"] == "skipped" for e in report["recognizer"] if e["precision"] == "int8")


def test_validator_catches_bad_reports(export_dir):
    report = Profiler(export_dir, ProfileOptions(precisions=("fp32",), iterations=1, batches=(1,), galleries=(100,),
                                                 ks=(1,), index_backends=("cpu",))).run()
    assert validate(report) == []
    broken = json.loads(json.dumps(report))
    del broken["encode"][0]["latency"]["p90_ms"]
    broken["search"][0]["k"] = 0
    broken["schema_version"] = 2
    problems = validate(broken)
    assert any("p90_ms" in p for p in problems) and any(".k" in p for p in problems)
    assert any("schema_version" in p for p in problems)
    assert PROFILE_SCHEMA["title"] == "dagh-profile report"


def test_ctrl_c_keeps_what_was_measured(export_dir):
    profiler = Profiler(export_dir, ProfileOptions(precisions=("fp32",), iterations=2, **SMALL))
    steps = profiler.steps()
    seen = []

    def on_step(label):
        seen.append(label)
        if len(seen) == 4:
            raise KeyboardInterrupt

    profiler.on_step = on_step
    report = profiler.run()
    assert report["interrupted"] and len(report["encode"]) == 2 and validate(report) == []
    assert len(seen) == 4 < len(steps)


def test_cli_writes_json_and_table(export_dir, tmp_path):
    out = tmp_path / "p.json"
    result = CliRunner().invoke(profile_cli.main, [str(export_dir), "--iterations", "2", "--batch", "1",
                                                   "--gallery", "1000", "--k", "1", "--index", "cpu,gpu",
                                                   "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "SingleStream" in result.output and "search (1 query)" in result.output
    assert "recognizer: one 640x480 frame" in result.output
    assert validate(json.loads(out.read_text())) == []
    bad = CliRunner().invoke(profile_cli.main, [str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "manifest" in bad.output
