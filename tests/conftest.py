"""Shared fixtures. Runtime and profile tests run in a torch-free environment too: an export
directory made elsewhere can be passed in DAGH_TEST_EXPORT_DIR; otherwise one is made here with torch."""

import os
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def make_checkpoint(path, bits=12, size=32, widths=(8, 16), seed=0):
    """A small untrained checkpoint whose data source is a tiny synthetic set."""
    import torch

    from dagh.data import DataSource
    from dagh.model import create_model
    from dagh.runtime.preprocess import PreprocessConfig
    from dagh.train.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    model = create_model("dagh", bits=bits, input_size=size, widths=widths, fc_dim=16).eval()
    data = DataSource(identities=4, train_per_identity=6, test_per_identity=2, size=size)
    save_checkpoint(path, model=model, preprocess=PreprocessConfig(size=size),
                    extra={"data": data.to_dict(), "epoch": 0, "num_identities": 4})
    return path


@pytest.fixture
def tiny_checkpoint(tmp_path):
    return make_checkpoint(tmp_path / "tiny.pt")


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    given = os.environ.get("DAGH_TEST_EXPORT_DIR")
    if given:
        return Path(given)
    pytest.importorskip("torch", reason="making an export needs torch; set DAGH_TEST_EXPORT_DIR in torch-free runs")
    from dagh.export.pipeline import ExportOptions, export_checkpoint

    root = tmp_path_factory.mktemp("export")
    ckpt = make_checkpoint(root / "m.pt", bits=24)
    export_checkpoint(ckpt, root / "export", ExportOptions(fp16=True), log=lambda m: None)
    return root / "export"
