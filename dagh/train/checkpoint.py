"""Checkpoints: weights plus everything needed to rebuild the model.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts,
saved with torch.save and loaded with ``torch.load(weights_only=True)``, so
opening an untrusted checkpoint cannot run code. It holds the model config,
the preprocessing config, the loss, training and data configs, the weights,
the optimizer state and the training history.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from dagh import __version__
from dagh.errors import CheckpointError, ConfigError
from dagh.fileio import atomic_write
from dagh.model import HashNet, ModelConfig, model_from_config
from dagh.runtime.preprocess import PreprocessConfig

FORMAT = "dagh-checkpoint"
FORMAT_VERSION = 1


@dataclasses.dataclass
class Checkpoint:
    """A loaded checkpoint: configs, states and history."""

    model_config: ModelConfig
    preprocess: PreprocessConfig
    state: dict[str, Any]  # the raw dict (state_dicts, optimizer, configs of loss/train/data)
    path: Path | None = None

    @property
    def epoch(self) -> int:
        return int(self.state.get("epoch", 0))

    def build_model(self) -> HashNet:
        """The network with its trained weights, in eval mode."""
        model = model_from_config(self.model_config)
        try:
            model.load_state_dict(self.state["model_state"])
        except RuntimeError as exc:
            raise CheckpointError(f"{self.path}: weights do not fit the stored model config: {exc}") from exc
        return model.eval()


def save_checkpoint(path: str | os.PathLike, *, model: HashNet, preprocess: PreprocessConfig,
                    extra: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temporary file, fsync, rename)."""
    state = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "dagh_version": __version__,
        "model_config": model.config.to_dict(), "preprocess": preprocess.to_dict(),
        "model_state": model.state_dict(), **extra,
    }
    with atomic_write(path) as handle:
        torch.save(state, handle)


def _unreadable(path: Path, exc: Exception) -> str:
    """One line on why torch.load refused ``path``. torch's own message runs to paragraphs and advises
    weights_only=False, which would run the file's code; its one useful line is the unpickler's detail."""
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [line.strip() for line in str(exc).replace("WeightsUnpickler error:", "\n").splitlines()]
    lines = [line for line in lines if line and not line.startswith(boilerplate)]
    detail = next((line for line in lines if "global" in line.lower()), lines[0] if lines else "")
    if "global" in detail.lower():  # "Unsupported global: GLOBAL os.system", "unsupported GLOBAL posix.system"
        return (f"{str(path)!r} is refused: it names Python objects beyond tensors and plain data ({detail[:120]}), "
                "so loading it could run code; dagh checkpoints hold none. Use a checkpoint written by dagh-train")
    reason = f"{type(exc).__name__}: {detail[:160]}" if detail else type(exc).__name__
    return f"{str(path)!r} is not a dagh checkpoint (torch cannot read it: {reason}); pass a .pt file from dagh-train"


def load_checkpoint(path: str | os.PathLike, *, expect_model: str | None = None,
                    expect_bits: int | None = None) -> Checkpoint:
    """Load and validate a checkpoint (``weights_only=True``: data, never code).

    ``expect_model`` / ``expect_bits``: refuse a checkpoint of another
    architecture or code length with a clear error.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, refused globals: all "not a checkpoint"
        raise CheckpointError(_unreadable(path, exc)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a dagh checkpoint (no '{FORMAT}' marker)")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{str(path)!r} has checkpoint format version "
                              f"{state.get('format_version')}; this dagh reads version {FORMAT_VERSION}")
    try:
        model_config = ModelConfig.from_dict(state["model_config"])
        preprocess = PreprocessConfig.from_dict(state["preprocess"])
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f"{str(path)!r} has a malformed config: {exc}") from exc
    if expect_model is not None and model_config.name != expect_model:
        raise CheckpointError(f"{str(path)!r} holds a {model_config.name!r} model, not {expect_model!r}")
    if expect_bits is not None and model_config.bits != expect_bits:
        raise CheckpointError(f"{str(path)!r} holds a {model_config.bits}-bit model, not "
                              f"{expect_bits}-bit; train a {expect_bits}-bit model or drop --bits")
    return Checkpoint(model_config, preprocess, state, path)
