import pickle

import pytest
import torch

from dagh.data import DataSource
from dagh.errors import CheckpointError, ConfigError
from dagh.model import model_config
from dagh.runtime.preprocess import PreprocessConfig
from dagh.train.checkpoint import load_checkpoint, save_checkpoint
from dagh.train.config import TrainConfig
from dagh.train.loop import augment_batch, resolve_device, train
from dagh.train.losses import default_loss_config

TINY_DATA = DataSource(identities=4, train_per_identity=6, test_per_identity=2)
TINY_MODEL = dict(widths=(8, 16), fc_dim=16)


def tiny_train(path, bits=12, epochs=1, resume=None, **model_over):
    mc = model_config("dagh", bits=bits, **{**TINY_MODEL, **model_over})
    return train(mc, default_loss_config("dagh"), TrainConfig(epochs=epochs, batch_size=8), TINY_DATA,
                 path, resume=resume, progress=False, log=lambda m: None)


def test_round_trip_rebuilds_the_same_network(tmp_path):
    path = tmp_path / "m.pt"
    result = tiny_train(path)
    assert result.report is not None and 0.0 <= result.report.map <= 1.0
    ckpt = load_checkpoint(path)
    assert ckpt.model_config.bits == 12 and ckpt.epoch == 1
    # Synthetic faces carry the renderer's landmark template into the checkpoint (for the recognizer).
    assert ckpt.preprocess == PreprocessConfig(size=32, face_template=TINY_DATA.face_template())
    assert ckpt.preprocess.face_template is not None
    assert DataSource.from_dict(ckpt.state["data"]) == TINY_DATA
    model = ckpt.build_model()
    again = load_checkpoint(path).build_model()
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(model.encode(x), again.encode(x))


def test_resume_continues_and_refuses_other_architecture(tmp_path):
    path = tmp_path / "m.pt"
    tiny_train(path, epochs=1)
    result = tiny_train(path, epochs=2, resume=path)
    assert [h["epoch"] for h in result.history] == [1, 2]
    with pytest.raises(CheckpointError, match="different architecture"):
        tiny_train(tmp_path / "other.pt", bits=24, resume=path)
    with pytest.raises(CheckpointError, match="different architecture"):
        tiny_train(tmp_path / "other.pt", resume=path, spatial_attention=False)


def test_expectations_on_load(tmp_path):
    path = tmp_path / "m.pt"
    tiny_train(path)
    with pytest.raises(CheckpointError, match="12-bit model, not 48-bit"):
        load_checkpoint(path, expect_bits=48)
    with pytest.raises(CheckpointError, match="'dagh' model, not 'ddh'"):
        load_checkpoint(path, expect_model="ddh")


def test_unreadable_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a dagh checkpoint \\(torch cannot read it"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a dagh checkpoint"):
        load_checkpoint(foreign)


class Evil:
    marker = None

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_checkpoint_that_would_run_code_is_refused(tmp_path, protocol):
    Evil.marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "dagh-checkpoint", "x": Evil()}, f, protocol=protocol)
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert "\n" not in message and "weights_only=False" not in message and "file an issue" not in message
    if protocol == 2:  # the unpickler reaches the GLOBAL and names it
        assert "could run code" in message and "os.system" in message or "posix.system" in message
    assert not Evil.marker.exists()  # nothing ran


def test_weights_of_another_shape_are_a_clear_error(tmp_path):
    path = tmp_path / "m.pt"
    tiny_train(path)
    state = torch.load(path, weights_only=True)
    state["model_config"]["bits"] = 24  # config says 24, weights are 12
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path).build_model()


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    tiny_train(path)
    before = path.read_bytes()
    model = load_checkpoint(path).build_model()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model=model, preprocess=PreprocessConfig(), extra={})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind


def test_cuda_without_gpu_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="no CUDA"):
        resolve_device("cuda")


def test_augment_keeps_shape_and_content(rng):
    images = rng.integers(0, 255, (5, 32, 32, 3), dtype="uint8")
    out = augment_batch(images, rng)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert abs(float(out.mean()) - float(images.mean())) < 5
