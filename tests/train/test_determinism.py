"""The same seed and thread count on the same machine train bit-identical weights (separate processes)."""

import subprocess
import sys

import torch

from dagh.train.checkpoint import load_checkpoint

TRAIN = """
import sys
from dagh.data import DataSource
from dagh.model import model_config
from dagh.train.config import TrainConfig
from dagh.train.loop import train
from dagh.train.losses import default_loss_config

train(model_config("dagh", bits=16, input_size=32, widths=(8, 16), fc_dim=32), default_loss_config("dagh"),
      TrainConfig(epochs=2, batch_size=16, threads=2, seed=3),
      DataSource(identities=6, train_per_identity=8, test_per_identity=2, size=32),
      sys.argv[1], progress=False, evaluate=False, log=lambda m: None)
"""


def train_in_a_fresh_process(path):
    subprocess.run([sys.executable, "-c", TRAIN, str(path)], check=True, capture_output=True)
    return load_checkpoint(path)


def test_two_runs_train_the_same_weights_bit_for_bit(tmp_path):
    a, b = (train_in_a_fresh_process(tmp_path / f"{name}.pt") for name in "ab")
    for part in ("model_state", "loss_state"):
        left, right = a.state[part], b.state[part]
        assert left.keys() == right.keys()
        differing = [k for k in left if not torch.equal(left[k], right[k])]
        assert not differing, f"{part}: {differing} differ between two runs of the same seed"
    assert a.state["provenance"] == b.state["provenance"]
    assert a.state["provenance"]["threads"] == 2 and len(a.state["provenance"]["train_images_sha256"]) == 64
    # and the weights did train: not the initial ones
    assert any(not torch.equal(v, torch.zeros_like(v)) for v in a.state["model_state"].values())
