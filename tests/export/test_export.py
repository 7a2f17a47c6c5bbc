import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from dagh.cli import export as export_cli
from dagh.data import DataSource
from dagh.errors import ConfigError, DependencyError
from dagh.eval.verification import SEEN_TEST_SPLIT, UNSEEN_SYNTHETIC
from dagh.export.onnx_export import read_metadata
from dagh.export.pipeline import ExportOptions, export_checkpoint
from dagh.manifest import SCHEMA_VERSION, Manifest, ManifestError, OpenSet, load_manifest
from dagh.runtime.encode.onnxruntime_runner import OnnxRunner
from dagh.train.checkpoint import load_checkpoint
from tests.conftest import make_checkpoint

QUIET = dict(log=lambda m: None)


@pytest.mark.parametrize("bits, size", [(12, 32), (48, 32), (64, 32), (48, 64)])
def test_round_trip(tmp_path, bits, size):
    ckpt = make_checkpoint(tmp_path / "m.pt", bits=bits, size=size)
    result = export_checkpoint(ckpt, tmp_path / "out", ExportOptions(fp16=True), **QUIET)
    manifest = load_manifest(tmp_path / "out")
    assert manifest.code_bits == bits and manifest.input.shape == ["N", 3, size, size]
    fp32 = next(m for m in manifest.reports["parity"]["models"] if m["precision"] == "fp32")
    # FP32 ONNX agrees with torch on every bit but those within rounding of zero
    assert fp32["flips_outside_tolerance"] == 0
    assert fp32["max_abs_h_error"] < 1e-4
    assert {f.path for f in manifest.files} == {"model.onnx", "model.fp16.onnx", "check_crops.npy", "check_codes.npy"}
    assert result.trtexec and "--minShapes=images:1x3x" in result.trtexec[0]
    # The check crops dagh-engine runs engines on: uint8 faces at the model's size, with their FP32 ONNX codes
    crops = np.load(tmp_path / "out" / "check_crops.npy")
    assert crops.dtype == np.uint8 and crops.shape[1:] == (size, size, 3) and len(crops) == 128
    codes = np.load(tmp_path / "out" / "check_codes.npy")
    from dagh.runtime.preprocess import PreprocessConfig, preprocess_batch

    fp32_codes, _ = OnnxRunner(tmp_path / "out" / "model.onnx").run(
        preprocess_batch(crops, PreprocessConfig(size=size)))
    assert codes.dtype == np.int8 and np.array_equal(codes, fp32_codes)
    assert manifest.reports["engine_check"]["onnx_flip_rate"]["fp16"] < 0.01


def test_graph_has_no_sign_and_binarizes_with_greater_or_equal(tmp_path, tiny_checkpoint):
    export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(fp16=True), **QUIET)
    for name in ("model.onnx", "model.fp16.onnx"):
        graph = onnx.load(tmp_path / "out" / name).graph
        ops = [n.op_type for n in graph.node]
        assert "Sign" not in ops and "GreaterOrEqual" in ops
        producer = {o: n for n in graph.node for o in n.output}
        codes = producer["codes"]
        assert codes.op_type in ("Where", "Cast")
        assert [o.name for o in graph.output] == ["codes", "h"]
        assert graph.input[0].name == "images"
        assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 I/O kept
        assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in graph.output)


def test_dynamic_batch(tmp_path, tiny_checkpoint, rng):
    export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(), **QUIET)
    runner = OnnxRunner(tmp_path / "out" / "model.onnx", batch_size=1000)
    model = load_checkpoint(tiny_checkpoint).build_model()
    import torch

    for n in (1, 2, 7, 64):
        x = rng.standard_normal((n, 3, 32, 32)).astype(np.float32)
        codes, h = runner.run(x)
        assert codes.shape == (n, 12)
        assert set(np.unique(codes)) <= {-1.0, 1.0}
        with torch.no_grad():
            ref = model.continuous_code(torch.from_numpy(x)).numpy()
        assert np.abs(h - ref).max() < 1e-4


def test_metadata_survives(tmp_path, tiny_checkpoint):
    export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(fp16=True), **QUIET)
    for name, precision in (("model.onnx", "fp32"), ("model.fp16.onnx", "fp16")):
        meta = read_metadata(tmp_path / "out" / name)
        assert meta["code_bits"] == "12" and meta["input_size"] == "32"
        assert meta["precision"] == precision and meta["color_order"] == "RGB"
        assert meta["mean"] == "0.5,0.5,0.5" and len(meta["source_checkpoint_sha256"]) == 64
        assert meta["dagh_version"]


def test_manifest_detects_tampering(tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    export_checkpoint(tiny_checkpoint, out, ExportOptions(), **QUIET)
    load_manifest(out)
    data = bytearray((out / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (out / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="sha256"):
        load_manifest(out)
    (out / "model.onnx").unlink()
    with pytest.raises(ManifestError, match="missing"):
        load_manifest(out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="schema version 99"):
        load_manifest(out)


def test_refuses_non_empty_directory_without_force(tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="--force"):
        export_checkpoint(tiny_checkpoint, out, ExportOptions(), **QUIET)
    assert (out / "precious.txt").read_text() == "keep me"
    export_checkpoint(tiny_checkpoint, out, ExportOptions(force=True), **QUIET)
    assert not (out / "precious.txt").exists() and (out / "manifest.json").exists()


def test_engine_yes_without_tensorrt_names_the_extra(tmp_path, tiny_checkpoint):
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    with pytest.raises(DependencyError, match=r"dagh\[tensorrt\]"):
        export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(fp16=True, engine="yes"), **QUIET)
    assert not (tmp_path / "out").exists()
    result = export_checkpoint(tiny_checkpoint, tmp_path / "auto", ExportOptions(fp16=True), **QUIET)
    assert any("skipping TensorRT" in n for n in result.notes)


def test_bad_options():
    with pytest.raises(ConfigError, match="--fp16"):
        ExportOptions(engine="yes")
    with pytest.raises(ConfigError):
        ExportOptions(engine="maybe")


def test_opset_out_of_range(tmp_path, tiny_checkpoint):
    with pytest.raises(ConfigError, match="opset 21"):
        export_checkpoint(tiny_checkpoint, tmp_path / "out", ExportOptions(opset=21), **QUIET)


def test_cli_prints_table_and_directory(tmp_path, tiny_checkpoint):
    result = CliRunner().invoke(export_cli.main, [str(tiny_checkpoint), "-o", str(tmp_path / "out"), "--fp16"])
    assert result.exit_code == 0, result.output
    assert "model.fp16.onnx" in result.output and "ΔmAP" in result.output
    open_set = load_manifest(tmp_path / "out").open_set
    assert (f"open-set radius {open_set.radius} (FAR {open_set.measured_far:.2g} measured on "
            f"{open_set.impostor_pairs} impostor pairs of unseen synthetic identities; TAR") in result.output
    assert result.output.strip().splitlines()[-1] == f"export directory: {tmp_path / 'out'}"
    again = CliRunner().invoke(export_cli.main, [str(tiny_checkpoint), "-o", str(tmp_path / "out")])
    assert again.exit_code == 2 and "--force" in again.output


def _partials(parent, name):
    return [p for p in parent.iterdir() if p.name.startswith(f".{name}.partial-")]


@pytest.mark.parametrize("existing", [False, True])
def test_killed_export_never_leaves_a_complete_looking_directory(tmp_path, existing):
    ckpt = make_checkpoint(tmp_path / "m.pt", bits=48, size=64)
    out = tmp_path / "out"
    if existing:
        export_checkpoint(ckpt, out, ExportOptions(), **QUIET)
        before = {p.name: p.read_bytes() for p in out.iterdir()}
    killed = False
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "dagh.cli.export", str(ckpt), "-o", str(out), "--fp16",
                                 "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if _partials(tmp_path, "out") and any(_partials(tmp_path, "out")[0].iterdir()):
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.005)
        proc.wait()
        if killed:
            break
    assert killed, "the export finished before it could be killed"
    if existing:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        load_manifest(out)
    else:
        assert not out.exists()


def _spread_checkpoint(path, template=None):
    """A 24-bit untrained checkpoint whose BatchNorm statistics are measured on its training faces, so its
    codes spread (an untrained net with unit statistics maps every face to nearly one code: radius -1)."""
    import torch

    from dagh.data import load_splits
    from dagh.runtime.preprocess import PreprocessConfig, preprocess_batch
    from dagh.train.checkpoint import save_checkpoint

    ckpt = load_checkpoint(make_checkpoint(path, bits=24))
    model = ckpt.build_model()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None   # a plain average over the one batch
    faces = load_splits(DataSource.from_dict(ckpt.state["data"])).train
    model.train()
    with torch.no_grad():
        model.continuous_code(torch.from_numpy(preprocess_batch(faces.images, ckpt.preprocess)))
    preprocess = PreprocessConfig(size=32, face_template=template)
    save_checkpoint(path, model=model.eval(), preprocess=preprocess,
                    extra={k: ckpt.state[k] for k in ("data", "epoch", "num_identities")})
    return path


def test_open_set_and_face_template_after_export(tmp_path, tiny_checkpoint):
    from dagh.eval.encode import encode_faces
    from dagh.eval.verification import evaluate_verification, verification_faces
    from dagh.runtime.face.align import ARCFACE_TEMPLATE
    from dagh.runtime.preprocess import preprocess_batch

    ckpt = _spread_checkpoint(tmp_path / "t.pt", ARCFACE_TEMPLATE)
    export_checkpoint(ckpt, tmp_path / "out", ExportOptions(target_far=1e-2), **QUIET)
    manifest = load_manifest(tmp_path / "out")
    assert manifest.input.face_template == [list(p) for p in ARCFACE_TEMPLATE]
    o = manifest.open_set
    assert isinstance(o, OpenSet) and o.identities == UNSEEN_SYNTHETIC and o.target_far == 1e-2
    assert (o.genuine_pairs, o.impostor_pairs) == (200 * 6, 800 * 799 // 2 - 200 * 6) and o.far_measurable
    assert o.radius >= 1 and 0 < o.measured_far <= 1e-2 and 0 < o.tar < 1
    report = manifest.reports["verification"]
    assert report["target"]["radius"] == o.radius and report["encoded_by"] == "model.onnx"
    # exactly the FP32 ONNX codes of the faces dagh-eval measures on
    loaded = load_checkpoint(ckpt)
    vset = verification_faces(DataSource.from_dict(loaded.state["data"]))
    onnx_codes, _ = OnnxRunner(tmp_path / "out" / "model.onnx").run(preprocess_batch(vset.faces.images,
                                                                                      loaded.preprocess))
    again = evaluate_verification(onnx_codes, vset.faces.labels, target_far=1e-2)
    assert list(again.impostor_histogram) == report["impostor_histogram"]
    assert (again.target.radius, again.target.far, again.target.tar) == (o.radius, o.measured_far, o.tar)
    # torch (dagh-eval) agrees but for rounding flips
    ref = evaluate_verification(encode_faces(loaded.build_model(), vset.faces, loaded.preprocess),
                                vset.faces.labels, target_far=1e-2)
    assert abs(ref.target.radius - o.radius) <= 1
    moved = np.abs(np.subtract(ref.impostor_histogram, report["impostor_histogram"])).sum()
    assert moved <= 0.01 * o.impostor_pairs
    # no template in the checkpoint: none in the manifest
    export_checkpoint(tiny_checkpoint, tmp_path / "plain", ExportOptions(), **QUIET)
    assert load_manifest(tmp_path / "plain").input.face_template is None


def test_folder_data_measures_the_open_set_on_the_test_split(tmp_path):
    import torch
    from PIL import Image

    rng = np.random.default_rng(0)
    for person in ("ann", "bob", "cy"):
        (tmp_path / "faces" / person).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "faces" / person / f"{i}.png")
    ckpt = make_checkpoint(tmp_path / "m.pt")
    state = torch.load(ckpt, weights_only=True)
    state["data"] = DataSource(kind="folder", path=str(tmp_path / "faces"), test_fraction=0.4).to_dict()
    torch.save(state, ckpt)
    export_checkpoint(ckpt, tmp_path / "out", ExportOptions(), **QUIET)
    o = load_manifest(tmp_path / "out").open_set
    # 2 of 5 images per person are queries: 3 genuine pairs, 6 * 5 / 2 - 3 impostor pairs; far too few
    assert o.identities == SEEN_TEST_SPLIT and (o.genuine_pairs, o.impostor_pairs) == (3, 12)
    assert not o.far_measurable


def test_manifest_schema_versions(tmp_path, export_dir):
    manifest = load_manifest(export_dir)
    assert SCHEMA_VERSION == 2 and manifest.open_set is not None
    assert Manifest.from_json(manifest.to_json()) == manifest          # v2 round-trips
    data = json.loads(manifest.to_json())
    assert data["schema_version"] == 2 and data["open_set"]["radius"] == manifest.open_set.radius
    # a version-1 manifest (before open_set and face_template) still loads, with None for both
    data["schema_version"] = 1
    del data["open_set"], data["input"]["face_template"]
    old = Manifest.from_json(json.dumps(data))
    assert old.open_set is None and old.input.face_template is None and old.code_bits == manifest.code_bits
    for version in (3, "2", True, None):
        data["schema_version"] = version
        with pytest.raises(ManifestError, match="schema version"):
            Manifest.from_json(json.dumps(data))
    data["schema_version"] = 2
    data["open_set"] = {"radius": 3}
    with pytest.raises(ManifestError, match="malformed"):
        Manifest.from_json(json.dumps(data))
