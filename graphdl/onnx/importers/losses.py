"""Importers of the ONNX loss ops: SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss, with
class weights, ignore_index and the three reductions, for scores [N, C] or [N, C, d1, ...]."""
from __future__ import annotations

import numpy as np

from ... import ops
from ...core.builder import Tensor
from ..importer import NodeCtx
from ...core.types import DType
from . import importer


def _apply(c: NodeCtx, op: str, ins: list, **attrs) -> Tensor:
    return c.b.apply1(op, ins, **attrs)


@importer("SoftmaxCrossEntropyLoss")
def _softmax_cross_entropy(c: NodeCtx) -> list[Tensor]:
    """Without weights or ignore_index: graphdl's softmax_cross_entropy op. Otherwise (PyTorch
    always writes ignore_index=-100) the exact ONNX definition in primitives: rows whose label is
    ignore_index count neither in the sum nor in the mean's denominator."""
    z, labels, weights = c.x(0), c.x(1), c.opt(2)
    reduction, ignore = c.attr("reduction", "mean"), c.attr("ignore_index", None)
    if labels.dtype not in (DType.int64, DType.int32):
        raise c.fail(f"labels must be int64 or int32 class indices, got {labels.dtype.name} "
                     f"{labels.type} (ONNX defines no probability targets here)")
    if reduction not in ("mean", "sum", "none"):
        raise c.fail(f"unknown reduction {reduction!r}; expected mean, sum or none")
    logp = ops.log_softmax(z, 1)
    simple = weights is None and ignore is None and reduction != "none" and z.type.rank == 2
    if simple:
        return [_apply(c, "softmax_cross_entropy", [z, labels], reduction=reduction), logp]
    return [_sce_general(c, logp, labels, weights, ignore, reduction), logp]


@importer("NegativeLogLikelihoodLoss")
def _nll_loss(c: NodeCtx) -> Tensor:
    """-input[n, label[n]] per row (input holds log-probabilities), weighted and reduced as in
    SoftmaxCrossEntropyLoss."""
    logp, labels = c.x(0), c.x(1)
    if labels.dtype not in (DType.int64, DType.int32):
        raise c.fail(f"labels must be int64 or int32 class indices, got {labels.dtype.name}")
    return _sce_general(c, logp, labels, c.opt(2), c.attr("ignore_index", None),
                        c.attr("reduction", "mean"))


def _sce_general(c: NodeCtx, logp: Tensor, labels: Tensor, weights: Tensor | None,
                 ignore: int | None, reduction: str) -> Tensor:
    """-w[y] logp[y] per row (w = weights, 0 where y == ignore_index), then reduced."""
    rank, n_classes = logp.type.rank, (logp.shape or (None, None))[1]
    if rank is None or not isinstance(n_classes, int):
        raise c.fail(f"the class axis of scores {logp.type} must be static")
    axes_shape = [1, n_classes] + [1] * (rank - 2)
    classes = c.b.const(np.arange(n_classes, dtype=labels.dtype.np).reshape(axes_shape))
    onehot = ops.cast(ops.unsqueeze(labels, (1,)).eq(classes), logp.dtype)
    w = None
    if weights is not None:
        w = ops.reduce_sum(onehot * ops.reshape(weights, axes_shape), 1)
    if ignore is not None:
        keep = 1.0 - ops.cast(labels.eq(c.b.const(np.asarray(ignore, labels.dtype.np))),
                              logp.dtype)
        w = keep if w is None else w * keep
    per = -ops.reduce_sum(onehot * logp, 1)
    per = per if w is None else per * w
    if reduction == "none":
        return per
    if reduction == "sum" or w is None:
        return ops.reduce_sum(per) if reduction == "sum" else ops.reduce_mean(per)
    return ops.reduce_sum(per) / ops.reduce_sum(w)
