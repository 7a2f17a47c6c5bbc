"""dagh-align: raw photos -> aligned crops; no-face and several-face photos skipped and counted, or refused."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dagh.cli import align as align_cli

pytestmark = pytest.mark.skipif(importlib.util.find_spec("skimage") is None, reason="needs scikit-image's photos")


@pytest.fixture
def raw(tmp_path):
    data = Path(list(importlib.util.find_spec("skimage").submodule_search_locations)[0]) / "data"
    astronaut = Image.open(data / "astronaut.png").convert("RGB")
    (tmp_path / "raw" / "eileen").mkdir(parents=True)
    (tmp_path / "raw" / "other").mkdir()
    astronaut.save(tmp_path / "raw" / "eileen" / "a.jpg")
    astronaut.transpose(Image.FLIP_LEFT_RIGHT).save(tmp_path / "raw" / "eileen" / "b.jpg")
    Image.open(data / "coffee.png").convert("RGB").save(tmp_path / "raw" / "other" / "coffee.jpg")
    head = astronaut.crop((120, 20, 330, 230))
    two = Image.new("RGB", (640, 300))
    two.paste(head, (0, 0))
    two.paste(head, (320, 0))
    two.save(tmp_path / "raw" / "other" / "two.jpg")
    return tmp_path / "raw"


def test_align_writes_crops_and_counts_what_it_skipped(raw, tmp_path):
    out = tmp_path / "aligned"
    result = CliRunner().invoke(align_cli.main, [str(raw), "-o", str(out), "--size", "64", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 crops written, 1 skipped (no face), 1 skipped (several faces)" in result.output
    crops = sorted(out.glob("*/*.png"))
    assert [c.relative_to(out).as_posix() for c in crops] == ["eileen/a.png", "eileen/b.png"]
    assert np.asarray(Image.open(crops[0])).shape == (64, 64, 3)
    record = json.loads((out / "dagh-align.json").read_text())
    assert record["size"] == 64 and record["skipped"] == {"no face": 1, "several faces": 1}

    from dagh.data import DataSource
    from dagh.runtime.face.align import ARCFACE_TEMPLATE

    # Training on the aligned folder carries the template into the checkpoint.
    assert DataSource(kind="folder", path=str(out)).face_template() == ARCFACE_TEMPLATE


def test_strict_refuses_and_leaves_nothing_behind(raw, tmp_path):
    out = tmp_path / "aligned"
    result = CliRunner().invoke(align_cli.main, [str(raw), "-o", str(out), "--strict", "--quiet"])
    assert result.exit_code == 2 and "no face" in result.output
    assert not out.exists() and not list(tmp_path.glob(".aligned*"))  # written whole, or not at all


def test_a_non_empty_output_needs_force(raw, tmp_path):
    out = tmp_path / "aligned"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    result = CliRunner().invoke(align_cli.main, [str(raw), "-o", str(out), "--quiet"])
    assert result.exit_code == 2 and "--force" in result.output and (out / "keep.txt").exists()
