import hashlib
import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from dagh.calibration.data import ArrayCalibrationReader, build_calibration_set, draw_samples
from dagh.calibration.methods import CalibMethod, candidates_for
from dagh.calibration.quantize import inspect_qdq
from dagh.errors import ConfigError, DataError
from dagh.export.pipeline import ExportOptions, export_checkpoint
from dagh.manifest import load_manifest
from dagh.runtime.preprocess import PreprocessConfig
from tests.train.test_checkpoint import tiny_train

QUIET = dict(log=lambda m: None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("calib") / "m.pt"
    tiny_train(path, bits=48, epochs=2)
    return path


@pytest.fixture(scope="module")
def int8_export(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("calib") / "out"
    export_checkpoint(trained, out, ExportOptions(int8=True, calib_data="synthetic", calib_samples=64), **QUIET)
    return out


def test_qdq_graph_is_symmetric_per_channel_and_binarization_is_float(int8_export):
    path = int8_export / "model.int8.onnx"
    facts = inspect_qdq(path)
    assert facts["qdq_nodes"] > 0
    assert facts["all_zero_points_zero"] and facts["zero_point_dtypes"] == ["int8"]
    assert facts["per_channel_weights"] > 0 and facts["per_tensor_weights"] == 0
    assert facts["qdq_before_binarization"] == []
    # Independently of inspect_qdq: every zero-point initializer is 0, and h is not a DQ output.
    model = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    zps = [inits[n.input[2]] for n in model.graph.node
           if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2]
    assert zps and all(np.all(z == 0) for z in zps)
    producer = {o: n for n in model.graph.node for o in n.output}
    assert producer["h"].op_type not in ("DequantizeLinear", "QuantizeLinear")
    compare = next(n for n in model.graph.node if n.op_type == "GreaterOrEqual")
    assert producer[compare.input[0]].op_type != "DequantizeLinear"


def test_report_and_files_in_manifest(int8_export):
    manifest = load_manifest(int8_export)
    calib = manifest.reports["calibration"]
    assert calib["method"] in {c["method"] for c in calib["candidates"]}
    assert calib["calibration_images"] + calib["holdout_images"] == 64
    assert {"fp32_batch1_ms", "int8_batch64_ms"} <= set(calib["onnxruntime_cpu_latency"])
    kinds = {(f.path, f.kind) for f in manifest.files}
    assert ("calibration.ranges.json", "calibration") in kinds
    assert ("check_crops.npy", "check-crops") in kinds and ("check_codes.npy", "check-codes") in kinds
    # TensorRT's implicit-calibration cache is written on the device (dagh-engine), for the TensorRT there
    assert not (int8_export / "calibration.cache").exists()
    assert ("calibration.flatbuffers", "calibration") in kinds
    from onnxruntime.quantization.CalTableFlatBuffers.TrtTable import TrtTable

    table = TrtTable.GetRootAsTrtTable((int8_export / "calibration.flatbuffers").read_bytes(), 0)
    assert table.DictLength() == len(json.loads((int8_export / "calibration.ranges.json").read_text())["data"])
    int8 = next(m for m in manifest.reports["parity"]["models"] if m["precision"] == "int8")
    assert len(int8["per_bit_flip_rate"]) == 48 and int8["bit_agreement_vs_fp32_onnx"] is not None
    check = manifest.reports["engine_check"]
    assert check["crops"] == calib["holdout_images"] and 0.0 <= check["onnx_flip_rate"]["int8"] < 0.05


@pytest.mark.parametrize("version, header", [("8.6.1", "TRT-8601-"), ("10.0.1", "TRT-100001-"),
                                             ("10.16.1.11", "TRT-101601-")])
def test_the_implicit_calibration_cache_names_the_tensorrt_that_reads_it(int8_export, tmp_path, version, header):
    import struct

    from dagh.export.calibration_cache import write_calibration_cache

    ranges = json.loads((int8_export / "calibration.ranges.json").read_text())["data"]
    cache = write_calibration_cache(int8_export / "calibration.ranges.json", tmp_path / "c.cache", version,
                                    "entropy").read_text().splitlines()
    assert cache[0] == header + "EntropyCalibration2" and len(cache) == len(ranges) + 1
    name, scale = cache[1].split(": ")
    values = lambda v: np.asarray(v["data"] if isinstance(v, dict) else v, dtype=np.float64)  # noqa: E731
    amax = max(np.abs(values(ranges[name]["highest"])).max(), np.abs(values(ranges[name]["lowest"])).max())
    assert struct.unpack(">f", bytes.fromhex(scale))[0] == pytest.approx(amax / 127, rel=1e-6)


def test_tensorrt_11_gets_no_implicit_calibration_cache(int8_export, tmp_path):
    from dagh.errors import ConfigError
    from dagh.export.calibration_cache import write_calibration_cache

    with pytest.raises(ConfigError, match="no implicit INT8 calibration"):
        write_calibration_cache(int8_export / "calibration.ranges.json", tmp_path / "c.cache", "11.4.0.106", "minmax")
    assert not (tmp_path / "c.cache").exists()


def test_auto_picks_the_best_candidate(trained, tmp_path):
    from dagh.data.synthetic import SyntheticConfig, make_synthetic_splits

    faces = make_synthetic_splits(SyntheticConfig(identities=8, train_per_identity=8, test_per_identity=1,
                                                  seed=5)).train.images.copy()
    # One image in 64 is a saturated checkerboard: it blows up the min-max ranges,
    # which percentile calibration clips away.
    faces[::64] = (np.indices((32, 32)).sum(0) % 2 * 255).astype(np.uint8)[..., None]
    np.save(tmp_path / "calib.npy", faces)
    export_checkpoint(trained, tmp_path / "out", ExportOptions(int8=True, calib_data=str(tmp_path / "calib.npy"),
                                                               calib_samples=64), **QUIET)
    calib = load_manifest(tmp_path / "out").reports["calibration"]
    scores = {c["method"]: c["holdout_bit_agreement"] for c in calib["candidates"]}
    assert len(scores) == 5
    assert scores[calib["method"]] == max(scores.values())
    assert scores["minmax"] < scores[calib["method"]]


def test_same_seed_same_model_bytes(trained, tmp_path):
    digests = []
    for name in ("a", "b"):
        export_checkpoint(trained, tmp_path / name, ExportOptions(int8=True, calib_data="synthetic",
                                                                   calib_samples=48, calib_method="minmax"), **QUIET)
        digests.append(hashlib.sha256((tmp_path / name / "model.int8.onnx").read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_candidates_and_methods():
    assert [c.label for c in candidates_for("auto")][:2] == ["minmax", "entropy"]
    assert candidates_for("percentile")[0].method is CalibMethod.PERCENTILE
    with pytest.raises(ConfigError):
        candidates_for("kl")


def test_draw_samples_covers_identities():
    labels = np.repeat(np.arange(10), 20)
    idx = draw_samples(len(labels), labels, 30, seed=0)
    assert len(idx) == 30 and np.array_equal(np.bincount(labels[idx]), [3] * 10)
    assert np.array_equal(idx, draw_samples(len(labels), labels, 30, seed=0))


def test_reader_yields_equal_batches():
    reader = ArrayCalibrationReader(np.zeros((72, 3, 4, 4), np.float32))
    sizes = []
    while (batch := reader.get_next()) is not None:
        sizes.append(len(batch["images"]))
    assert sum(sizes) == 72 and len(set(sizes)) == 1


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p / "x.npy", np.zeros((10, 32, 32, 3), np.uint8)), "at least 32"),
    (lambda p: np.save(p / "x.npy", np.zeros((40, 64, 64, 3), np.uint8)), "64x64"),
    (lambda p: np.save(p / "x.npy", np.zeros((40, 32, 32, 1), np.uint8)), "\\[N, H, W, 3\\]"),
    (lambda p: np.save(p / "x.npy", np.zeros((40, 32, 32, 3), np.float32)), "uint8"),
])
def test_bad_calibration_arrays(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(DataError, match=message):
        build_calibration_set(str(tmp_path / "x.npy"), PreprocessConfig(), samples=64)


def test_empty_folder_and_too_few_samples(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        build_calibration_set(str(tmp_path / "empty"), PreprocessConfig())
    with pytest.raises(DataError, match="too few"):
        build_calibration_set("synthetic", PreprocessConfig(), samples=8)


def test_int8_without_calibration_data_uses_faces_like_the_checkpoints(trained, tmp_path):
    said = []
    export_checkpoint(trained, tmp_path / "out", ExportOptions(int8=True, calib_samples=64), log=said.append)
    assert any("calibration data: synthetic faces" in line for line in said)
    assert load_manifest(tmp_path / "out").reports["calibration"]["source"] == "synthetic"


def test_folder_checkpoints_calibrate_on_their_training_split(tmp_path):
    from dagh.data import DataSource, FaceSet, Splits
    from dagh.export.pipeline import _calibration_source

    train = FaceSet(np.zeros((20, 32, 32, 3), np.uint8), np.repeat(np.arange(5), 4), [str(i) for i in range(5)])
    test = FaceSet(np.ones((5, 32, 32, 3), np.uint8), np.arange(5), [str(i) for i in range(5)])
    source = DataSource(kind="folder", path=str(tmp_path))
    splits = Splits(train, test, source.to_dict())
    chosen, name = _calibration_source(ExportOptions(int8=True), source, splits, lambda m: None)
    assert chosen is train and "training split" in name  # never the query split
    given, _ = _calibration_source(ExportOptions(int8=True, calib_data="x.npy"), source, splits, lambda m: None)
    assert given == "x.npy"


def test_auto_never_keeps_a_clearly_worse_method(trained, tmp_path, monkeypatch):
    """A real, deliberately bad candidate (percentile 50 clips half of every range) among the
    usual ones: auto must score it lower and keep the best."""
    import dagh.calibration.pipeline as pipeline
    from dagh.calibration.methods import CalibCandidate

    bad = CalibCandidate(CalibMethod.PERCENTILE, 50.0)
    monkeypatch.setattr(pipeline, "candidates_for", lambda method: [bad] + candidates_for("auto")[:2])
    export_checkpoint(trained, tmp_path / "out", ExportOptions(int8=True, calib_data="synthetic", calib_samples=64),
                      **QUIET)
    calib = load_manifest(tmp_path / "out").reports["calibration"]
    scores = {c["method"]: c["holdout_bit_agreement"] for c in calib["candidates"]}
    assert scores["percentile-50"] < min(scores["minmax"], scores["entropy"]) - 0.02  # clearly worse
    assert calib["method"] != "percentile-50" and scores[calib["method"]] == max(scores.values())
