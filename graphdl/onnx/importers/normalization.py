"""Importer of ONNX BatchNormalization, in inference and in training mode.

Training mode (as PyTorch exports a model in ``.train()``) becomes ``batch_norm_train`` with
ONNX's conventions translated: ONNX's ``momentum`` weighs the old running value (graphdl's and
PyTorch's weigh the batch), and ONNX updates the running variance with the biased batch
variance. Opset 14 on says training mode with ``training_mode=1`` (outputs: y and the running
mean and variance); opsets 7 to 13 by the node having more outputs than y (y, the running mean
and variance, and the batch's mean and variance, "saved" for the gradient); opset 6 with
``is_test=0``.
"""
from __future__ import annotations

from ...core.builder import Tensor
from ..importer import NodeCtx
from ...ops.normalization import batch_norm, batch_stats
from ...ops.shape import squeeze
from . import importer


@importer("BatchNormalization")
def _batch_norm(c: NodeCtx) -> Tensor | list[Tensor]:
    args = [c.x(i) for i in range(5)]
    eps = float(c.attr("epsilon", 1e-5))
    if not _training(c):
        return batch_norm(*args, eps=eps)
    momentum = 1.0 - float(c.attr("momentum", 0.9))
    y, mean, var = c.b.apply("batch_norm_train", args, eps=eps, momentum=momentum,
                             unbiased=False)
    outs = [y, mean, var]
    if c.opset < 14 and len(c.node.output) > 3:  # the batch's own mean and variance
        mean_kept, var_kept, _ = batch_stats(args[0])
        axes = [a for a in range(args[0].type.rank) if a != 1]
        outs += [squeeze(mean_kept, axes), squeeze(var_kept, axes)]
    return outs[:max(len(c.node.output), 1)]


def _training(c: NodeCtx) -> bool:
    if c.opset >= 14:
        return bool(int(c.attr("training_mode", 0)))
    if c.opset >= 7:
        return any(c.node.output[1:])
    return not int(c.attr("is_test", 0))


