"""Fuzzing every parser of untrusted bytes: random and mutated inputs never crash and never hang.

"Never crash": the parser returns, or raises a DaghError (a clear message), nothing else.
"Never hang": every example runs under hypothesis' deadline. Parsers: gallery files (.dgal, with and
without checksum verification), export manifests, DDH dataset pickles, dagh-align's template record,
image files. (dagh reads no other untrusted format: detection boxes come from the detector, not files.)
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagh.errors import DaghError

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=True)


def _valid_gallery() -> bytes:
    import tempfile

    from dagh.runtime import save_gallery

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.dgal"
        rng = np.random.default_rng(1)
        save_gallery(path, rng.integers(0, 256, (9, 6), dtype=np.uint8), np.arange(9), 48,
                     labels=["ann", "bob", "cyd"] * 3)
        return path.read_bytes()


VALID_GALLERY = _valid_gallery()


@st.composite
def mutated(draw, valid: bytes):
    """``valid`` with some bytes flipped, a slice cut out, bytes inserted, or cut short."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "int"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "truncate":
            del data[at:]
        elif kind == "int" and len(data) >= at + 8:  # a length or count field set to something wild
            data[at:at + 8] = draw(st.sampled_from([b"\xff" * 8, b"\x00" * 8, (2 ** 40).to_bytes(8, "little")]))
    return bytes(data)


def _gallery_survives(data: bytes, tmp_path: Path) -> None:
    from dagh.runtime import load_gallery

    path = tmp_path / "g.dgal"
    path.write_bytes(data)
    for verify in (True, False):
        try:
            gallery = load_gallery(path, verify=verify)
        except DaghError:
            continue
        assert gallery.bits > 0 and len(gallery.ids) == len(gallery.codes)
        if len(gallery.codes):
            gallery.to_index(backend="numpy").search(np.asarray(gallery.codes[:1]), k=1)


@FUZZ
@given(data=st.binary(max_size=600))
def test_gallery_random_bytes(tmp_path, data):
    _gallery_survives(data, tmp_path)


@FUZZ
@given(data=mutated(VALID_GALLERY))
def test_gallery_mutated(tmp_path, data):
    _gallery_survives(data, tmp_path)


# -- manifests ------------------------------------------------------------------------------------------
def _valid_manifest_text() -> str:
    from dagh.manifest import FileEntry, InputSpec, Manifest, OpenSet

    return Manifest(code_bits=24, input=InputSpec("images", ["N", 3, 32, 32], "float32", "NCHW", "RGB",
                                                  [0.5] * 3, [0.5] * 3, [[0.3, 0.4]] * 5),
                    outputs=[{"name": "codes"}], files=[FileEntry("model.onnx", "onnx", "fp32", "0" * 64, 10, {})],
                    model={"bits": 24}, source={}, build={}, open_set=OpenSet(5, 1e-3, 1e-3, 0.5, 10, 1000, "x"),
                    ).to_json()


VALID_MANIFEST = _valid_manifest_text()
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4), max_leaves=12)


@st.composite
def mutated_manifest(draw):
    data = json.loads(VALID_MANIFEST)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(data)))
        if draw(st.booleans()):
            data[key] = draw(JSON_VALUES)
        elif isinstance(data[key], dict) and data[key]:
            inner = draw(st.sampled_from(sorted(data[key])))
            data[key][inner] = draw(JSON_VALUES)
        else:
            del data[key]
    return json.dumps(data)


def _manifest_survives(text: str) -> None:
    from dagh.manifest import Manifest

    try:
        manifest = Manifest.from_json(text)
    except DaghError:
        return
    manifest.to_json()  # what it read, it can write again


@FUZZ
@given(text=st.text(max_size=300))
def test_manifest_random_text(text):
    _manifest_survives(text)


@FUZZ
@given(text=mutated_manifest())
def test_manifest_mutated_fields(text):
    _manifest_survives(text)


@FUZZ
@given(data=mutated(VALID_MANIFEST.encode()))
def test_manifest_mutated_bytes(data):
    _manifest_survives(data.decode("utf-8", errors="replace"))


# -- DDH pickles ----------------------------------------------------------------------------------------
VALID_PICKLE = pickle.dumps((np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), [0, 1]), protocol=2)


def _pickle_survives(data: bytes) -> None:
    from dagh.data.ddh_pickle import restricted_load

    try:
        restricted_load(data, "fuzz")
    except DaghError:
        pass


@FUZZ
@given(data=st.binary(max_size=400))
def test_ddh_pickle_random_bytes(data):
    _pickle_survives(data)


@FUZZ
@given(data=mutated(VALID_PICKLE))
def test_ddh_pickle_mutated(data):
    _pickle_survives(data)


# -- dagh-align's record and image files ----------------------------------------------------------------
@FUZZ
@given(text=st.one_of(st.text(max_size=200), mutated_manifest()))
def test_align_record(tmp_path, text):
    from dagh.data.aligner import ALIGN_RECORD, read_template_record

    (tmp_path / ALIGN_RECORD).write_text(text, encoding="utf-8")
    try:
        read_template_record(tmp_path)
    except DaghError:
        pass


def _valid_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)).save(buffer, "PNG")
    return buffer.getvalue()


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), mutated(_valid_png())))
def test_image_files(tmp_path, data):
    from dagh.runtime.image import read_image

    path = tmp_path / "x.png"
    path.write_bytes(data)
    try:
        rgb = read_image(path)
    except DaghError:
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


@pytest.mark.parametrize("name", ["gallery", "manifest", "pickle", "png"])
def test_the_seeds_are_valid(name, tmp_path):
    """The mutations start from inputs that do parse: otherwise they test nothing."""
    if name == "gallery":
        from dagh.runtime import load_gallery

        (tmp_path / "g.dgal").write_bytes(VALID_GALLERY)
        assert len(load_gallery(tmp_path / "g.dgal").ids) == 9
    elif name == "manifest":
        from dagh.manifest import Manifest

        assert Manifest.from_json(VALID_MANIFEST).code_bits == 24
    elif name == "pickle":
        from dagh.data.ddh_pickle import restricted_load

        assert restricted_load(VALID_PICKLE)[0].shape == (2, 3072)
    else:
        from dagh.runtime.image import read_image

        (tmp_path / "x.png").write_bytes(_valid_png())
        assert read_image(tmp_path / "x.png").shape == (16, 16, 3)
