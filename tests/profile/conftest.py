"""Runtime tests run in a torch-free environment too: an export directory made
elsewhere can be passed in DAGH_TEST_EXPORT_DIR; otherwise one is made here with torch."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    given = os.environ.get("DAGH_TEST_EXPORT_DIR")
    if given:
        return Path(given)
    pytest.importorskip("torch", reason="making an export needs torch; set DAGH_TEST_EXPORT_DIR in torch-free runs")
    from dagh.export.pipeline import ExportOptions, export_checkpoint
    from tests.conftest import make_checkpoint

    root = tmp_path_factory.mktemp("export")
    ckpt = make_checkpoint(root / "m.pt", bits=24)
    export_checkpoint(ckpt, root / "export", ExportOptions(fp16=True), log=lambda m: None)
    return root / "export"
