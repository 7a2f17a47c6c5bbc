"""Fold BatchNorm into the Conv/Linear before it, for export.

Besides saving work, this matters for INT8: a BatchNorm after a layer scales
that layer's output by gamma / sqrt(var). Quantized unfolded, the rounding
error of the layer is amplified by that factor (large where the output varies
little around its mean), which flipped ~8% of the hash bits in our first INT8
export; folded, the quantization sees the normalized weights and outputs.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every Conv2d->BatchNorm2d and
    Linear->BatchNorm1d pair inside an nn.Sequential folded into one layer."""
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module._modules.items())
        for (name_a, a), (name_b, b) in zip(children, children[1:]):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                module._modules[name_a] = fuse_conv_bn_eval(a, b)
                module._modules[name_b] = nn.Identity()
            elif isinstance(a, nn.Linear) and isinstance(b, nn.BatchNorm1d):
                module._modules[name_a] = fuse_linear_bn_eval(a, b)
                module._modules[name_b] = nn.Identity()
    return fused
