"""Importer of ONNX BatchNormalization, in inference and in training mode.

Training mode (``training_mode=1``, as PyTorch exports a model in ``.train()``) becomes
``batch_norm_train`` with ONNX's conventions translated: ONNX's ``momentum`` weighs the old
running value (graphdl's and PyTorch's weigh the batch), and ONNX updates the running variance
with the biased batch variance.
"""
from __future__ import annotations

from ..builder import Tensor
from ..onnx_import import NodeCtx
from ..ops.normalization import batch_norm
from . import importer


@importer("BatchNormalization")
def _batch_norm(c: NodeCtx) -> Tensor | list[Tensor]:
    args = [c.x(i) for i in range(5)]
    eps = float(c.attr("epsilon", 1e-5))
    if not int(c.attr("training_mode", 0)):
        return batch_norm(*args, eps=eps)
    momentum = 1.0 - float(c.attr("momentum", 0.9))
    y, mean, var = c.b.apply("batch_norm_train", args, eps=eps, momentum=momentum,
                             unbiased=False)
    return [y, mean, var][:max(len(c.node.output), 1)]


