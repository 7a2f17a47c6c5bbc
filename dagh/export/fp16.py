"""FP16 ONNX: weights and compute in float16, float32 inputs and outputs kept,
so the runtime feeds the same arrays to every precision."""

from __future__ import annotations

import os

from dagh._optional import require
from dagh.export.onnx_export import save_checked


def convert_fp16(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    onnx = require("onnx", extra="export", purpose="FP16 conversion")
    require("onnxruntime", extra="export", purpose="FP16 conversion")
    # The converter ships inside the onnxruntime wheel: no extra dependency.
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(os.fspath(src))
    metadata = {p.key: p.value for p in model.metadata_props}
    fp16 = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    # The converter appends its input Casts after the nodes that read them; the
    # ONNX checker (and TensorRT's parser) want nodes in topological order.
    topological_sort(fp16.graph)
    del fp16.metadata_props[:]
    for key, value in sorted({**metadata, "precision": "fp16"}.items()):
        entry = fp16.metadata_props.add()
        entry.key, entry.value = key, value
    save_checked(fp16, dst)


def topological_sort(graph) -> None:
    """Reorder ``graph.node`` in place so every node comes after its inputs' producers."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        progress = False
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
                progress = True
            else:
                rest.append(node)
        if not progress:
            raise ValueError(f"graph has a cycle or a missing input near node {rest[0].name!r}")
        pending = rest
    nodes = [type(n)() for n in ordered]
    for copy, node in zip(nodes, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(nodes)
