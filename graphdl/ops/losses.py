"""Losses; each returns a scalar, averaged (``reduction="mean"``,
the default) or summed (``"sum"``).

``mse_loss`` and ``binary_cross_entropy`` are composites defined only by their decomposition, so
their kernel, ONNX lowering and VJP all follow from it. The logits losses carry their own
closed-form kernel (stable: log-sum-exp, ``log1p(exp(-|z|))``) and their own short VJP
(``sigmoid(z) - t``, ``softmax(z) - onehot``); they export as their decomposition, except
``softmax_cross_entropy``, which lowers to ONNX ``SoftmaxCrossEntropyLoss``.

Losses do not broadcast: a prediction [N,1] against a target [N] is a classic silent bug (it
would average an [N,N] matrix), so the two must have the same shape.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import DTypeError, GraphError, ShapeError
from ..core.registry import Call, OpDef, onnx_op, register
from ..core.types import DType, TensorType, dims_equal, shape_str
from .activations import log_softmax_kernel, log_softmax, relu, sigmoid, softmax
from .common import need_float, same_dtype
from .elementwise import cast, exp, log
from .reduce import reduced_count, fast_mean, reduce_mean, reduce_sum
from .rows import max_keepdims, picked, sum_keepdims
from .shape import unsqueeze

_ATTRS = {"reduction": "mean"}
_INT_LABELS = (DType.int64, DType.int32)


# -- shared rules ------------------------------------------------------------------------------


def _check_reduction(attrs: dict) -> str:
    r = attrs["reduction"]
    if r not in ("mean", "sum"):
        raise GraphError(f"reduction must be 'mean' or 'sum', got {r!r}")
    return r


def _pair_infer(types: list, attrs: dict) -> list[TensorType]:
    """Prediction and target of one float dtype and the same shape -> a scalar."""
    _check_reduction(attrs)
    dt = same_dtype(types, "prediction and target")
    need_float(types[0], "the prediction")
    a, b = types[0].shape, types[1].shape
    if a is not None and b is not None and (
            len(a) != len(b) or any(dims_equal(x, y) is False for x, y in zip(a, b))):
        raise ShapeError(f"prediction {shape_str(a)} and target {shape_str(b)} differ in shape; "
                         "losses do not broadcast, reshape one of them")
    return [TensorType(dt, ())]


def _rows_infer(types: list, attrs: dict) -> list[TensorType]:
    """Like _pair_infer, for logits [N, C] against class-probability targets [N, C]."""
    out = _pair_infer(types, attrs)
    _need_matrix(types[0])
    return out


def _need_matrix(t: TensorType) -> None:
    if t.shape is not None and len(t.shape) != 2:
        raise ShapeError(f"logits must be [N, C] (batch, classes), got {shape_str(t.shape)}; "
                         "flatten the leading axes first")


def _np_reduce(x: np.ndarray, reduction: str) -> np.ndarray:
    """The mean or sum of all of x (the mean without np.mean's wrapper, which costs more than
    the sum on a batch)."""
    total = fast_mean(x) if reduction == "mean" else np.add.reduce(x, axis=None)
    return np.asarray(total, dtype=x.dtype)


def _reduce(x: Tensor, reduction: str) -> Tensor:
    return reduce_mean(x) if reduction == "mean" else reduce_sum(x)


def _scale(g: Tensor, x: Tensor, attrs: dict, axes: Sequence[int]) -> Tensor:
    """The cotangent of each reduced term: g, divided by their count for a mean."""
    return g / reduced_count(x, axes) if attrs["reduction"] == "mean" else g


def _all_axes(x: Tensor) -> tuple[int, ...]:
    return tuple(range(x.type.rank or 0))


def _lift_target(pred: Tensor, target: Any) -> Tensor:
    return pred.b.lift(target, like=pred)


# -- mean squared error (composite) ------------------------------------------------------------


def _mse_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    d = ins[0] - ins[1]
    return [_reduce(d * d, attrs["reduction"])]


register(OpDef("mse_loss", _pair_infer, (2, 2), decompose=_mse_decompose, attrs=dict(_ATTRS),
               traits={"composite"}, doc="mean((pred - target)^2) (the squared loss)."))


def mse_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or sum) of ``(pred - target)**2`` over all elements: the regression loss."""
    return pred.b.apply1("mse_loss", [pred, _lift_target(pred, target)], reduction=reduction)


# -- binary cross-entropy on probabilities (composite) -----------------------------------------


def _bce_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    p, t = ins
    per = -(t * log(p) + (1.0 - t) * log(1.0 - p))
    return [_reduce(per, attrs["reduction"])]


register(OpDef("binary_cross_entropy", _pair_infer, (2, 2), decompose=_bce_decompose,
               attrs=dict(_ATTRS), traits={"composite"},
               doc="-(t log p + (1 - t) log(1 - p)) on probabilities p in (0, 1)."))


def binary_cross_entropy(prob: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``-(t log p + (1 - t) log(1 - p))`` averaged over all elements.

    Domain: ``p`` strictly inside (0, 1); nothing is clipped, so p = 0 or 1 gives inf or nan,
    as the formula does. On the logits of a sigmoid output, prefer
    :func:`binary_cross_entropy_with_logits`, which is finite everywhere.
    """
    return prob.b.apply1("binary_cross_entropy", [prob, _lift_target(prob, target)],
                         reduction=reduction)


# -- binary cross-entropy on logits ------------------------------------------------------------


def _bce_logits_kernel(z: np.ndarray, t: np.ndarray, *, reduction: str) -> np.ndarray:
    """``max(z, 0) - z t + log1p(exp(-|z|))`` = ``-(t log s(z) + (1 - t) log(1 - s(z)))``."""
    per = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    return _np_reduce(per, reduction)


def _bce_logits_vjp(b, c: Call, gys):
    """dz = (sigmoid(z) - t) g, dt = -z g (g divided by the count for a mean)."""
    z, t = c.inputs
    s = _scale(gys[0], z, c.attrs, _all_axes(z))
    return [(sigmoid(z) - t) * s, -(z * s)]


def _bce_logits_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    """The stable form in primitives; exp is only taken of -|z| <= 0."""
    z, t = ins
    per = relu(z) - z * t + log(1.0 + exp(-abs(z)))
    return [_reduce(per, attrs["reduction"])]


register(OpDef("binary_cross_entropy_with_logits", _pair_infer, (2, 2),
               kernel=_bce_logits_kernel, vjp=_bce_logits_vjp, decompose=_bce_logits_decompose,
               attrs=dict(_ATTRS), traits={"composite"},
               doc="binary cross-entropy of sigmoid(z), computed stably from the logits z."))


def binary_cross_entropy_with_logits(logits: Tensor, target: Tensor,
                                     reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of ``sigmoid(logits)`` against ``target``, stable for any logits."""
    return logits.b.apply1("binary_cross_entropy_with_logits",
                           [logits, _lift_target(logits, target)], reduction=reduction)


# -- softmax cross-entropy with integer labels -------------------------------------------------


def one_hot(labels: Tensor, depth: int, dtype: Any = "float32") -> Tensor:
    """Integer labels [N] -> [N, depth] rows of 0/1, built from equal and cast (exports
    anywhere). A label outside [0, depth) gives a row of zeros."""
    classes = labels.b.const(np.arange(depth, dtype=labels.dtype.np))
    return cast(unsqueeze(labels, (labels.type.rank,)).eq(classes), dtype)


def _sce_infer(types: list, attrs: dict) -> list[TensorType]:
    _check_reduction(attrs)
    z, y = types
    need_float(z, "logits")
    _need_matrix(z)
    if y.dtype not in _INT_LABELS:
        raise DTypeError(f"labels must be int64 or int32 class indices, got {y.dtype.name}; "
                         "for one-hot targets use softmax_cross_entropy_onehot")
    if y.shape is not None and len(y.shape) != 1:
        raise ShapeError(f"labels must be [N], got {shape_str(y.shape)}")
    if z.shape is not None and y.shape is not None and dims_equal(z.shape[0], y.shape[0]) is False:
        raise ShapeError(f"logits {shape_str(z.shape)} and labels {shape_str(y.shape)} have "
                         "different batch sizes")
    if z.shape is not None and not isinstance(z.shape[1], int):
        raise ShapeError(f"the class dim of logits {shape_str(z.shape)} must be static")
    return [TensorType(z.dtype, ())]


def check_labels(labels: np.ndarray, classes: int) -> None:
    """GraphError unless every label lies in [0, classes): one pass, negatives read as huge
    unsigned numbers."""
    unsigned = np.uint64 if labels.itemsize == 8 else np.uint32
    if labels.size and np.maximum.reduce(labels.view(unsigned), axis=None) >= classes:
        raise GraphError(f"labels must lie in [0, {classes}), got values "
                         f"{labels.min()}..{labels.max()}")


def _sce_kernel(z: np.ndarray, labels: np.ndarray, *, reduction: str) -> np.ndarray:
    check_labels(labels, z.shape[1])
    shifted = z - max_keepdims(z, 1)  # log-sum-exp, only the picked column kept
    lse = np.log(sum_keepdims(np.exp(shifted), 1)[:, 0])
    per_row = lse - picked(shifted, labels)
    return _np_reduce(per_row, reduction)


def _sce_vjp(b, c: Call, gys):
    """dz = (softmax(z) - onehot(labels)) g / N; labels get no gradient."""
    z, labels = c.inputs
    s = _scale(gys[0], z, c.attrs, (0,))
    return [(softmax(z, 1) - one_hot(labels, z.shape[1], z.dtype)) * s, None]


def _sce_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    z, labels = ins
    per_row = -reduce_sum(one_hot(labels, z.shape[1], z.dtype) * log_softmax(z, 1), 1)
    return [_reduce(per_row, attrs["reduction"])]


register(OpDef("softmax_cross_entropy", _sce_infer, (2, 2), kernel=_sce_kernel,
               slots={1: "labels"},
               lower=onnx_op("SoftmaxCrossEntropyLoss"), vjp=_sce_vjp, decompose=_sce_decompose,
               attrs=dict(_ATTRS), traits={"composite"},
               doc="-log softmax(z)[label] over a batch (ONNX SoftmaxCrossEntropyLoss)."))


def softmax_cross_entropy(logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy of ``softmax(logits)`` [N, C] against integer class ``labels`` [N],
    averaged over the batch; log-sum-exp stable. Predict with argmax of the logits. The class
    count C must be static (the gradient builds one-hot rows of it)."""
    return logits.b.apply1("softmax_cross_entropy", [logits, labels], reduction=reduction)


# -- softmax cross-entropy with one-hot / probability targets ----------------------------------


def _sce_onehot_kernel(z: np.ndarray, t: np.ndarray, *, reduction: str) -> np.ndarray:
    per_row = -np.sum(t * log_softmax_kernel(z, axis=1), axis=1)
    return _np_reduce(per_row, reduction)


def _sce_onehot_vjp(b, c: Call, gys):
    """dz = (softmax(z) sum_c t - t) g / N (= softmax(z) - t for rows of t summing to 1),
    dt = -log_softmax(z) g / N."""
    z, t = c.inputs
    s = _scale(gys[0], z, c.attrs, (0,))
    dz = softmax(z, 1) * reduce_sum(t, 1, keepdims=True) - t
    return [dz * s, -(log_softmax(z, 1) * s)]


def _sce_onehot_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    z, t = ins
    return [_reduce(-reduce_sum(t * log_softmax(z, 1), 1), attrs["reduction"])]


register(OpDef("softmax_cross_entropy_onehot", _rows_infer, (2, 2), kernel=_sce_onehot_kernel,
               vjp=_sce_onehot_vjp, decompose=_sce_onehot_decompose, attrs=dict(_ATTRS),
               traits={"composite"},
               doc="-sum_c t[c] log softmax(z)[c], over a batch of one-hot/probability rows."))


def softmax_cross_entropy_onehot(logits: Tensor, onehot: Tensor,
                                 reduction: str = "mean") -> Tensor:
    """Cross-entropy of ``softmax(logits)`` [N, C] against one-hot or probability rows [N, C],
    averaged over the batch; log-sum-exp stable."""
    return logits.b.apply1("softmax_cross_entropy_onehot", [logits, _lift_target(logits, onehot)],
                           reduction=reduction)
