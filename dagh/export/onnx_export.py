"""torch -> ONNX with the hash output computed in the graph.

Outputs: ``codes`` (+1/-1 as float32, from ``h >= 0``: GreaterOrEqual + Where,
never Sign, whose sign(0) = 0 would give a third value) and ``h``. Input
``images`` float32 [N, 3, H, W] with a dynamic batch axis.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any

import torch
from torch import nn

from dagh._optional import require
from dagh.errors import ConfigError, DaghError
from dagh.model import HashNet
from dagh.runtime.preprocess import PreprocessConfig

# onnxruntime's static quantization refuses opset 21+, and TensorRT 8.6 parses up to 17/18.
MIN_OPSET, MAX_OPSET, DEFAULT_OPSET = 13, 20, 17


class HashExportWrapper(nn.Module):
    """(codes, h) = (where(h >= 0, 1, -1), h): the graph the runtime runs."""

    def __init__(self, model: HashNet):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.model.continuous_code(images)
        return torch.where(h >= 0, 1.0, -1.0), h


def check_opset(opset: int) -> int:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(f"opset {opset} is out of range: use {MIN_OPSET}..{MAX_OPSET} "
                          "(onnxruntime quantization refuses 21+; TensorRT 8.6 parses up to 17)")
    return opset


def export_onnx(model: HashNet, preprocess: PreprocessConfig, path: str | os.PathLike, *,
                opset: int = DEFAULT_OPSET, metadata: dict[str, Any] | None = None) -> None:
    """Write the FP32 ONNX model, check it, and stamp ``metadata`` into metadata_props."""
    onnx = require("onnx", extra="export", purpose="ONNX export")
    check_opset(opset)
    from dagh.export.fusion import fold_batchnorm

    wrapper = HashExportWrapper(fold_batchnorm(model)).eval()
    example = torch.zeros(2, 3, preprocess.size, preprocess.size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export, but it is
        # the one whose graphs onnxruntime quantization and TensorRT 8.6 accept as-is.
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (example,), buffer, input_names=["images"], output_names=["codes", "h"],
                          dynamic_axes={"images": {0: "N"}, "codes": {0: "N"}, "h": {0: "N"}},
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    set_metadata(proto, metadata or {})
    save_checked(proto, path)


def set_metadata(proto: Any, metadata: dict[str, Any]) -> None:
    del proto.metadata_props[:]
    for key, value in sorted(metadata.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), str(value)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    onnx = require("onnx", extra="export", purpose="reading ONNX metadata")
    return {p.key: p.value for p in onnx.load(os.fspath(path), load_external_data=False).metadata_props}


def save_checked(proto: Any, path: str | os.PathLike) -> None:
    """Run the ONNX checker and shape inference, then save."""
    onnx = require("onnx", extra="export", purpose="ONNX export")
    try:
        onnx.checker.check_model(proto)
        proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    except Exception as exc:
        raise DaghError(f"the exported ONNX model fails the checker: {exc}") from exc
    onnx.save(proto, os.fspath(path))


def op_types(path: str | os.PathLike) -> list[str]:
    onnx = require("onnx", extra="export", purpose="reading ONNX models")
    return [n.op_type for n in onnx.load(os.fspath(path)).graph.node]
