"""Every torch-free door of dagh, walked through with bad input (runs in the torch-free env too).

Each case is (door, input): from the API it must raise a DaghError whose message is one line naming
the problem; from a CLI it must exit 2 with one "error: ..." line and no traceback. The table below is
the list of what is covered; `pytest --collect-only -q tests/badinput` prints it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dagh.errors import DaghError
from tests.badinput.corpus import make_images, png_bomb

BITS = 24


@pytest.fixture(scope="module")
def world(tmp_path_factory, export_dir):
    """Bad files beside good ones: images, galleries, export directories."""
    from dagh.manifest import file_entry, load_manifest
    from dagh.runtime import save_gallery

    root = tmp_path_factory.mktemp("doors")
    images = {name: path for name, (path, expect) in make_images(root / "images").items() if expect == "error"}
    (root / "bomb.png").write_bytes(png_bomb())
    images["bomb.png"] = root / "bomb.png"
    rng = np.random.default_rng(0)
    good = root / "good.dgal"
    save_gallery(good, rng.integers(0, 256, (20, 3), dtype=np.uint8), np.arange(20), BITS,
                 labels=[f"p{i % 4}" for i in range(20)])
    data = good.read_bytes()
    galleries = {"truncated": data[: len(data) // 2], "flipped byte": _flip(data, len(data) // 2),
                 "wrong magic": b"NOTDGAL!" + data[8:], "empty": b"", "text": b"hello\n" * 50}
    for name, blob in galleries.items():
        (root / f"{name.replace(' ', '_')}.dgal").write_bytes(blob)
    exports = {}

    def export_variant(name: str, change: Callable[[Path], None]) -> None:
        target = root / "exports" / name
        shutil.copytree(export_dir, target)
        change(target)
        exports[name] = target

    export_variant("missing file", lambda d: (d / "model.onnx").unlink())
    export_variant("tampered ONNX", lambda d: (d / "model.onnx").write_bytes((d / "model.onnx").read_bytes() + b"\0"))
    export_variant("manifest not JSON", lambda d: (d / "manifest.json").write_text("{ not json"))
    export_variant("manifest of another schema version",
                   lambda d: (d / "manifest.json").write_text(
                       json.dumps({**json.loads((d / "manifest.json").read_text()), "schema_version": 99})))
    export_variant("manifest naming a file outside", lambda d: _edit_manifest(
        d, lambda m: m["files"].append({"path": "../../etc/passwd", "kind": "onnx", "precision": "int8",
                                        "sha256": "0" * 64, "bytes": 1, "details": {}})))

    def other_code_length(d: Path) -> None:  # an ONNX of another model: its outputs say 12 bits, the manifest 24
        manifest = load_manifest(d)
        manifest.code_bits = 12
        manifest.files = [f if f.path != "model.onnx" else file_entry(d, "model.onnx", "onnx", "fp32")
                          for f in manifest.files]
        (d / "manifest.json").write_text(manifest.to_json())

    export_variant("ONNX of another code length", other_code_length)

    def foreign_engine(d: Path) -> None:
        (d / "model.fp16.engine").write_bytes(b"an engine from elsewhere")
        manifest = load_manifest(d)
        manifest.files.append(file_entry(d, "model.fp16.engine", "engine", "fp16", tensorrt_version="8.6.1",
                                         gpu_name="NVIDIA Jetson AGX Orin", dla_core=None))
        (d / "manifest.json").write_text(manifest.to_json())

    export_variant("engine from another device", foreign_engine)
    return {"root": root, "images": images, "good": good, "export": export_dir, "exports": exports}


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1:]


def _edit_manifest(directory: Path, change) -> None:
    data = json.loads((directory / "manifest.json").read_text())
    change(data)
    (directory / "manifest.json").write_text(json.dumps(data))


def refused(action: Callable[[], object], expect: str) -> str:
    with pytest.raises(DaghError) as caught:
        action()
    message = str(caught.value)
    assert "\n" not in message.strip(), f"more than one line: {message!r}"
    assert expect.lower() in message.lower(), f"{expect!r} not in {message!r}"
    return message


def cli(module: str, args: list, expect: str) -> str:
    import importlib

    main = importlib.import_module(f"dagh.cli.{module}").main
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}"
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    # "error: ..." from dagh; "Error: ..." from click's own checks (a missing file, a bad option)
    errors = [line for line in result.output.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, result.output
    assert expect.lower() in errors[0].lower(), f"{expect!r} not in {errors[0]!r}"
    return errors[0]


# -- Encoder.encode -------------------------------------------------------------------------------------
IMAGE_FILES = ["zero_bytes.jpg", "text_named.jpg", "truncated.jpg", "garbage_after_header.png", "huge_header.png",
               "bomb.png"]


@pytest.mark.parametrize("name", IMAGE_FILES)
def test_encoder_encode_image_files(world, name):
    from dagh.runtime import Encoder

    encoder = Encoder.open(world["export"])
    refused(lambda: encoder.encode([world["images"][name]]), name)


@pytest.mark.parametrize("value, expect", [
    (np.zeros((2, 32, 32, 3), np.float32), "uint8"),
    (np.zeros((2, 32, 32), np.uint8), "3 color channels"),
    (np.zeros((2, 32, 32, 4), np.uint8), "3 color channels"),
    ("no/such/file.jpg", "does not exist"),
    (42, "expected an image path"),
])
def test_encoder_encode_arrays_and_objects(world, value, expect):
    from dagh.runtime import Encoder

    refused(lambda: Encoder.open(world["export"]).encode(value), expect)


def test_awkward_but_valid_images_encode(world, tmp_path):
    """16-bit, 1-bit, palette, CMYK, RGBA, EXIF-rotated, animated: each decodes and encodes."""
    from dagh.runtime import Encoder

    good = [path for path, expect in make_images(tmp_path).values() if expect == "rgb"]
    assert len(good) == 9
    assert Encoder.open(world["export"]).encode(good).shape == (9, 3)


def test_encoder_encode_of_no_images_is_no_codes(world):
    from dagh.runtime import Encoder

    assert Encoder.open(world["export"]).encode(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 3)


# -- Recognizer.recognize -------------------------------------------------------------------------------
@pytest.mark.parametrize("frame, expect", [
    ("bomb.png", "bomb.png"), ("text_named.jpg", "text_named.jpg"), ("zero_bytes.jpg", "zero_bytes.jpg"),
    (np.zeros((480, 640, 3), np.float32), "uint8"), (np.zeros((480, 640), np.uint8), "grayscale"),
    (np.zeros((480, 640, 4), np.uint8), "alpha"), (np.zeros((0, 640, 3), np.uint8), "empty"),
    (np.zeros((20000, 20000, 3), np.uint8), "resize it"), (None, "numpy array"),
])
def test_recognizer_recognize(world, frame, expect):
    from dagh.runtime import Recognizer

    if isinstance(frame, str):
        frame = world["images"][frame]
    with Recognizer.open(world["export"], world["good"], detector="whole-image", radius=5) as recognizer:
        refused(lambda: recognizer.recognize(frame), expect)


# -- HammingIndex ---------------------------------------------------------------------------------------
def _index():
    from dagh.runtime import HammingIndex

    index = HammingIndex(BITS, backend="numpy")
    index.add(np.zeros((4, 3), np.uint8), np.arange(4))
    return index


@pytest.mark.parametrize("call, expect", [
    (lambda i: i.add(np.zeros((2, 4), np.uint8)), "24-bit"),
    (lambda i: i.add(np.zeros((2, 3), np.float32)), "uint8"),
    (lambda i: i.add(np.zeros((2, 3), np.uint8), np.arange(3)), "ids"),
    (lambda i: i.add(np.zeros((2, 3), np.uint8), np.array([0.5, 2.0])), "integers"),
    (lambda i: i.search(np.zeros((1, 4), np.uint8), 1), "24-bit"),
    (lambda i: i.search(np.zeros((1, 3), np.uint8), 0), "k"),
    (lambda i: i.search(np.zeros((1, 3), np.uint8), -3), "k"),
    (lambda i: i.range_search(np.zeros((1, 3), np.uint8), -1), "radius"),
    (lambda i: i.range_search(np.zeros((1, 3), np.int64), 2), "uint8"),
    (lambda i: i.remove(np.array([1.5])), "integer"),
], ids=["add: wrong width", "add: float codes", "add: ids length", "add: float ids",
        "search: wrong width", "search: k=0", "search: k<0", "range_search: radius<0", "range_search: int64 codes",
        "remove: float ids"])
def test_hamming_index(call, expect):
    refused(lambda: call(_index()), expect)


def test_hamming_index_of_a_bad_length():
    from dagh.runtime import HammingIndex

    refused(lambda: HammingIndex(0), "bits")
    refused(lambda: HammingIndex(24, backend="quantum"), "backend")


# -- gallery files --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expect", [
    ("truncated", "truncated"), ("flipped_byte", "checksum"), ("wrong_magic", "not a dagh gallery"),
    ("empty", "empty"), ("text", "not a dagh gallery"),
])
def test_gallery_files(world, name, expect):
    from dagh.runtime import load_gallery

    refused(lambda: load_gallery(world["root"] / f"{name}.dgal"), expect)


def test_gallery_of_another_code_length_and_a_missing_one(world):
    from dagh.runtime import append_gallery, load_gallery

    refused(lambda: load_gallery(world["good"], bits=48), "24")
    refused(lambda: load_gallery(world["root"] / "absent.dgal"), "does not exist")
    refused(lambda: append_gallery(world["good"], np.zeros((1, 6), np.uint8), np.array([99]), 48), "24")


# -- export directories ---------------------------------------------------------------------------------
EXPORT_CASES = [("missing file", "missing"), ("tampered ONNX", "sha256"), ("manifest not JSON", "not valid JSON"),
                ("manifest of another schema version", "schema version 99"),
                ("manifest naming a file outside", "outside the export directory"),
                ("ONNX of another code length", "12"), ("engine from another device", "TensorRT")]


@pytest.mark.parametrize("name, expect", EXPORT_CASES)
def test_encoder_open_export_directories(world, name, expect):
    from dagh.runtime import Encoder

    precision = "fp16" if name == "engine from another device" else "fp32"
    backend = "tensorrt" if name == "engine from another device" else "auto"
    refused(lambda: Encoder.open(world["exports"][name], precision, backend=backend), expect)


@pytest.mark.parametrize("name, expect", [c for c in EXPORT_CASES if c[0] != "engine from another device"])
def test_cli_profile_on_bad_exports(world, name, expect):
    cli("profile", [world["exports"][name], "--batch", "1", "--gallery", "1000", "--iterations", "2", "--quiet"], expect)


@pytest.mark.parametrize("name, expect", [c for c in EXPORT_CASES if c[0] not in ("ONNX of another code length",)])
def test_cli_doctor_on_bad_exports(world, name, expect):
    args = [world["exports"][name], "--detector", "whole-image"]
    if name == "engine from another device":
        args += ["--precision", "fp16", "--backend", "tensorrt"]
    cli("doctor", args, expect if name != "engine from another device" else "tensorrt")


@pytest.mark.parametrize("name, expect", EXPORT_CASES[:5])  # an engine from elsewhere is what dagh-engine replaces
def test_cli_engine_on_bad_exports(world, name, expect):
    cli("engine", [world["exports"][name]], expect)


# -- dagh-gallery ---------------------------------------------------------------------------------------
def test_cli_gallery_doors(world, tmp_path):
    photos = tmp_path / "photos" / "ann"
    photos.mkdir(parents=True)
    shutil.copy(world["images"]["bomb.png"], photos / "bomb.png")
    export = world["export"]
    cli("gallery", ["enroll", tmp_path / "g.dgal", tmp_path / "photos", "--export", export, "--detector", "whole-image",
                    "--strict", "--quiet"], "bomb.png")
    assert not (tmp_path / "g.dgal").exists()  # nothing half-written
    cli("gallery", ["list", world["root"] / "truncated.dgal"], "truncated")
    cli("gallery", ["identify", world["good"], world["images"]["text_named.jpg"], "--export", export,
                    "--detector", "whole-image", "--radius", 5], "text_named.jpg")
    cli("gallery", ["identify", world["good"], world["images"]["bomb.png"], "--export", export,
                    "--detector", "whole-image", "--radius", 5], "bomb.png")
    cli("gallery", ["remove", world["good"], "nobody"], "nobody")
    cli("gallery", ["list", tmp_path / "none.dgal"], "does not exist")
