"""The training loop behind ``dagh-train``."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dagh.data import DataSource, Splits, load_splits
from dagh.errors import CheckpointError, ConfigError
from dagh.eval.encode import encode_faces
from dagh.eval.metrics import RetrievalReport, evaluate_retrieval
from dagh.model import HashNet, ModelConfig, model_from_config
from dagh.progress import progress_bar
from dagh.runtime.preprocess import PreprocessConfig, preprocess_batch
from dagh.train.checkpoint import load_checkpoint, save_checkpoint
from dagh.train.config import TrainConfig
from dagh.train.losses import DiscreteIdentityLoss, LossConfig


@dataclasses.dataclass
class TrainResult:
    checkpoint: Path
    history: list[dict[str, Any]]
    report: RetrievalReport | None
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)  # versions, CPU, threads, data digest


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} was asked for, but torch sees no CUDA GPU; "
                          "use --device cpu (or auto)")
    try:
        return torch.device(spec)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {spec!r}: {exc}") from exc


def deterministic_setup(config: TrainConfig) -> None:
    """Seed torch, fix its thread count and ask for deterministic kernels.

    With these, the same seed on the same CPU instruction set, thread count and numpy
    version trains bit-identical weights (tests/train/test_determinism.py). The thread
    count matters because kernels split their reductions over threads; the instruction set
    because oneDNN, MKL and torch pick their kernels by CPU (see docs/method.md).
    """
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)  # CUDA: warn where an op has no deterministic kernel


def provenance(splits: Splits) -> dict[str, Any]:
    """What the trained weights depend on besides the configs: the versions, the CPU's kernel
    level, the thread count and a digest of the training images (numpy versions can render them
    differently)."""
    import hashlib
    import platform

    return {"torch": str(torch.__version__), "numpy": str(np.__version__), "python": platform.python_version(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "train_images_sha256": hashlib.sha256(np.ascontiguousarray(splits.train.images)).hexdigest()}


def augment_batch(images: np.ndarray, rng: np.random.Generator, shift: int = 2) -> np.ndarray:
    """Random horizontal flips and +-``shift`` pixel translations (edge-padded)."""
    n, size = images.shape[0], images.shape[1]
    flip = rng.random(n) < 0.5
    images = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
    dy, dx = rng.integers(0, 2 * shift + 1, (2, n))
    rows = dy[:, None] + np.arange(size)[None]
    cols = dx[:, None] + np.arange(size)[None]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _lr_factor(config: TrainConfig, epoch_progress: float) -> float:
    if config.warmup_epochs and epoch_progress < config.warmup_epochs:
        return max(0.05, epoch_progress / config.warmup_epochs)
    if config.schedule == "constant":
        return 1.0
    span = max(1e-9, config.epochs - config.warmup_epochs)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (epoch_progress - config.warmup_epochs) / span)))


def evaluate_model(model: HashNet, splits: Splits, preprocess: PreprocessConfig,
                   device: torch.device) -> RetrievalReport:
    """Queries = test split, database = train split (DDH protocol)."""
    q = encode_faces(model, splits.test, preprocess, device=device)
    d = encode_faces(model, splits.train, preprocess, device=device)
    return evaluate_retrieval(q, splits.test.labels, d, splits.train.labels)


def train(model_config: ModelConfig, loss_config: LossConfig, train_config: TrainConfig,
          data: DataSource, output: str | os.PathLike, *, resume: str | os.PathLike | None = None,
          preprocess: PreprocessConfig | None = None, splits: Splits | None = None,
          progress: bool = True, evaluate: bool = True,
          log: Callable[[str], None] = print) -> TrainResult:
    """Train a hashing network and write its checkpoint to ``output`` after every epoch."""
    preprocess = preprocess or PreprocessConfig(size=model_config.input_size, face_template=data.face_template())
    if preprocess.size != model_config.input_size:
        raise ConfigError(f"preprocessing size {preprocess.size} differs from the model input "
                          f"size {model_config.input_size}")
    device = resolve_device(train_config.device)
    deterministic_setup(train_config)
    if splits is None:
        t0 = time.perf_counter()
        splits = load_splits(data, progress=progress, log=log)
        log(f"data: {data.describe()}: {len(splits.train)} train / {len(splits.test)} test images, "
            f"{splits.train.num_identities} identities ({time.perf_counter() - t0:.1f} s)")
    model = model_from_config(model_config).to(device)
    criterion = DiscreteIdentityLoss(loss_config, splits.train.num_identities, model_config.bits).to(device)
    # The classifier is normalized (margin) or tiny (softmax): no weight decay on it.
    optimizer = torch.optim.AdamW(
        [{"params": model.parameters()}, {"params": criterion.parameters(), "weight_decay": 0.0}],
        lr=train_config.lr, weight_decay=train_config.weight_decay)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume is not None:
        ckpt = load_checkpoint(resume)
        if ckpt.model_config != model_config:
            raise CheckpointError(
                f"cannot resume {str(resume)!r}: it holds {ckpt.model_config.name} "
                f"{ckpt.model_config.bits}-bit with a different architecture than asked for; "
                "pass the same model options, or start a new run without --resume")
        if ckpt.state.get("num_identities") != splits.train.num_identities:
            raise CheckpointError(f"cannot resume {str(resume)!r}: it was trained on "
                                  f"{ckpt.state.get('num_identities')} identities, the data has "
                                  f"{splits.train.num_identities}")
        model.load_state_dict(ckpt.state["model_state"])
        criterion.load_state_dict(ckpt.state["loss_state"])
        optimizer.load_state_dict(ckpt.state["optimizer_state"])
        start_epoch = ckpt.epoch
        history = list(ckpt.state.get("history", []))
        log(f"resumed from {resume} at epoch {start_epoch}")
        if start_epoch >= train_config.epochs:
            log(f"nothing to do: the checkpoint has {start_epoch} of {train_config.epochs} epochs")

    n = len(splits.train)
    steps_per_epoch = max(1, n // train_config.batch_size)
    for epoch in range(start_epoch, train_config.epochs):
        model.train()
        criterion.train()
        rng = np.random.default_rng([train_config.seed, epoch])
        order = rng.permutation(n)
        sums = {"total": 0.0, "identity": 0.0, "center": 0.0, "quant": 0.0}
        correct = seen = 0
        t0 = time.perf_counter()
        bar = range(steps_per_epoch)
        if progress:
            bar = progress_bar(bar, desc=f"epoch {epoch + 1}/{train_config.epochs}", unit="batch")
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = train_config.lr * _lr_factor(train_config, epoch + step / steps_per_epoch)
            idx = order[step * train_config.batch_size:(step + 1) * train_config.batch_size]
            images = splits.train.images[idx]
            if train_config.augment:
                images = augment_batch(images, rng)
            x = torch.from_numpy(preprocess_batch(images, preprocess)).to(device)
            y = torch.from_numpy(splits.train.labels[idx]).to(device)
            h, b = model(x)
            terms = criterion(h, b, y)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
            for key in sums:
                sums[key] += float(terms[key].detach())
            correct += int((terms["logits"].argmax(1) == y).sum())
            seen += len(idx)
            if progress:
                bar.set_postfix(loss=f"{sums['total'] / (step + 1):.3f}", acc=f"{correct / seen:.3f}")
        record = {"epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in sums.items()},
                  "train_accuracy": correct / max(1, seen), "seconds": time.perf_counter() - t0}
        history.append(record)
        log(f"epoch {epoch + 1}/{train_config.epochs}: loss {record['total']:.3f} "
            f"(identity {record['identity']:.3f}, center {record['center']:.3f}, "
            f"quant {record['quant']:.3f}), train acc {record['train_accuracy']:.3f}, "
            f"{record['seconds']:.1f} s")
        save_checkpoint(output, model=model, preprocess=preprocess, extra={
            "loss_config": loss_config.to_dict(), "train_config": train_config.to_dict(),
            "data": data.to_dict(), "num_identities": splits.train.num_identities,
            "loss_state": criterion.state_dict(), "optimizer_state": optimizer.state_dict(),
            "epoch": epoch + 1, "history": history, "provenance": provenance(splits),
        })

    report = None
    if evaluate:
        report = evaluate_model(model, splits, preprocess, device)
    return TrainResult(Path(output), history, report, provenance(splits))
