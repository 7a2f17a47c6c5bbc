"""Encoding face sets with a torch model (for training-time evaluation and dagh-eval)."""

from __future__ import annotations

import numpy as np
import torch

from dagh.data.faceset import FaceSet
from dagh.model import HashNet
from dagh.runtime.preprocess import PreprocessConfig, preprocess_batch


@torch.no_grad()
def encode_faces(model: HashNet, faces: FaceSet, preprocess: PreprocessConfig, *,
                 batch_size: int = 256, device: str | torch.device = "cpu",
                 return_h: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """+1/-1 int8 codes [N, K] of every face (and h [N, K] float32 if asked)."""
    was_training = model.training
    model.eval()
    codes, hs = [], []
    try:
        for start in range(0, len(faces), batch_size):
            x = torch.from_numpy(preprocess_batch(faces.images[start:start + batch_size], preprocess))
            h = model.continuous_code(x.to(device)).float().cpu()
            hs.append(h.numpy())
            codes.append(np.where(h.numpy() >= 0, 1, -1).astype(np.int8))
    finally:
        model.train(was_training)
    out = np.concatenate(codes)
    return (out, np.concatenate(hs)) if return_h else out
