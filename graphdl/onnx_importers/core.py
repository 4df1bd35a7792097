"""Importers of the core ops: elementwise, linalg, reductions, shape plumbing, activations,
losses. Where an ONNX op changed between opsets (axes as an attribute or an input, Softmax's 2-D
coercion before opset 13), the function reads both forms.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import ops
from ..builder import Tensor
from ..onnx_import import NodeCtx
from ..types import DType
from . import importer


def _apply(c: NodeCtx, op: str, ins: Sequence[Tensor | None], **attrs: Any) -> Tensor:
    return c.b.apply1(op, ins, **attrs)


# -- elementwise -------------------------------------------------------------------------------

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Equal": "equal",
           "Less": "less", "Greater": "greater", "LessOrEqual": "less_or_equal",
           "GreaterOrEqual": "greater_or_equal", "MatMul": "matmul"}
_UNARY = {"Neg": "neg", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Abs": "abs",
          "Reciprocal": "reciprocal", "Sign": "sign", "Relu": "relu", "Sigmoid": "sigmoid",
          "Tanh": "tanh", "Identity": "identity"}


@importer(*_BINARY)
def _binary(c: NodeCtx) -> Tensor:
    return _apply(c, _BINARY[c.node.op_type], [c.x(0), c.x(1)])


@importer(*_UNARY)
def _unary(c: NodeCtx) -> Tensor:
    return _apply(c, _UNARY[c.node.op_type], [c.x(0)])


@importer("Pow")
def _pow(c: NodeCtx) -> Tensor:
    """ONNX lets the exponent's type differ from the base's; graphdl casts it to the base's."""
    x, y = c.x(0), c.x(1)
    if y.dtype != x.dtype:
        y = ops.cast(y, x.dtype)
    return _apply(c, "pow", [x, y])


@importer("Max", "Min", "Sum", "Mean")
def _variadic(c: NodeCtx) -> Tensor:
    """Max/Min/Sum/Mean of any number of inputs, as a chain of binary ops."""
    op = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}[c.node.op_type]
    xs = c.xs()
    if not xs:
        raise c.fail("needs at least one input")
    out = xs[0] if len(xs) > 1 else _apply(c, "identity", [xs[0]])
    for x in xs[1:]:
        out = _apply(c, op, [out, x])
    if c.node.op_type == "Mean" and len(xs) > 1:
        out = out / len(xs)
    return out


@importer("Where")
def _where(c: NodeCtx) -> Tensor:
    return _apply(c, "where", [c.x(0), c.x(1), c.x(2)])


@importer("Cast")
def _cast(c: NodeCtx) -> Tensor:
    return ops.cast(c.x(0), DType.from_onnx(int(c.attr("to"))))


@importer("Clip")
def _clip(c: NodeCtx) -> Tensor:
    """max(min(x, hi), lo) with bounds as inputs (opset >= 11) or attributes (older)."""
    x = c.x(0)
    if c.opset < 11:
        lo, hi = c.attr("min", None), c.attr("max", None)
        lo = None if lo is None else c.b.const(np.asarray(lo, x.dtype.np))
        hi = None if hi is None else c.b.const(np.asarray(hi, x.dtype.np))
    else:
        lo, hi = c.opt(1), c.opt(2)
    if lo is not None:
        x = _apply(c, "maximum", [x, lo])
    if hi is not None:
        x = _apply(c, "minimum", [x, hi])
    return x


@importer("Constant")
def _constant(c: NodeCtx) -> Any:
    """A Constant's value is kept aside; its node is made where it is first used as a tensor."""
    makers = {"value": lambda v: np.asarray(v),
              "value_float": lambda v: np.asarray(v, np.float32),
              "value_floats": lambda v: np.asarray(v, np.float32),
              "value_int": lambda v: np.asarray(v, np.int64),
              "value_ints": lambda v: np.asarray(v, np.int64)}
    for key, make in makers.items():
        if key in c.attrs:
            arr = make(c.attrs[key])
            DType.of(arr.dtype)  # refuses element types graphdl lacks
            return c.defer_constant(arr)
    raise c.fail(f"only the attributes {sorted(makers)} are supported, got {sorted(c.attrs)}")


# -- activations -------------------------------------------------------------------------------


@importer("LeakyRelu")
def _leaky_relu(c: NodeCtx) -> Tensor:
    return _apply(c, "leaky_relu", [c.x(0)], alpha=float(c.attr("alpha", 0.01)))


@importer("Elu")
def _elu(c: NodeCtx) -> Tensor:
    return _apply(c, "elu", [c.x(0)], alpha=float(c.attr("alpha", 1.0)))


@importer("Softmax", "LogSoftmax")
def _softmax(c: NodeCtx) -> Tensor:
    """Opset >= 13: along ``axis`` (default -1). Older opsets coerce the input to 2-D at
    ``axis`` (default 1) and normalise over the flattened trailing dims."""
    op = "softmax" if c.node.op_type == "Softmax" else "log_softmax"
    x = c.x(0)
    if c.opset >= 13:
        return _apply(c, op, [x], axis=int(c.attr("axis", -1)))
    axis, rank = int(c.attr("axis", 1)), x.type.rank
    if rank is not None and axis % max(rank, 1) == rank - 1:
        return _apply(c, op, [x], axis=-1)
    y = _apply(c, op, [ops.flatten(x, axis)], axis=-1)
    return ops.reshape(y, ops.shape_of(x))


# -- linear algebra and reductions -------------------------------------------------------------


@importer("Gemm")
def _gemm(c: NodeCtx) -> Tensor:
    ins = [c.x(0), c.x(1)] + ([c.x(2)] if c.has(2) else [])
    return _apply(c, "gemm", ins, alpha=float(c.attr("alpha", 1.0)),
                  beta=float(c.attr("beta", 1.0)), transA=int(c.attr("transA", 0)),
                  transB=int(c.attr("transB", 0)))


def _reduce_axes(c: NodeCtx) -> tuple[int, ...] | None:
    """Axes from input 1 (ReduceSum >= 13, the others >= 18) or the ``axes`` attribute."""
    axes = c.ints(1, "axes") if c.has(1) else c.attr("axes", None)
    return None if axes is None or len(axes) == 0 else tuple(int(a) for a in axes)


@importer("ReduceSum", "ReduceMean", "ReduceMax", "ReduceL1", "ReduceL2", "ReduceSumSquare")
def _reduce(c: NodeCtx) -> Tensor:
    x, axes = c.x(0), _reduce_axes(c)
    keep = bool(c.attr("keepdims", 1))
    if axes is None and c.attr("noop_with_empty_axes", 0):
        return _apply(c, "identity", [x])
    kind = c.node.op_type
    pre = {"ReduceL1": lambda t: abs(t), "ReduceL2": lambda t: t * t,
           "ReduceSumSquare": lambda t: t * t}.get(kind)
    op = {"ReduceMean": "reduce_mean", "ReduceMax": "reduce_max"}.get(kind, "reduce_sum")
    out = _apply(c, op, [x if pre is None else pre(x)], axes=axes, keepdims=keep)
    return ops.sqrt(out) if kind == "ReduceL2" else out


# -- shapes ------------------------------------------------------------------------------------


@importer("Reshape")
def _reshape(c: NodeCtx) -> Tensor:
    return _apply(c, "reshape", [c.x(0), c.int_vector(1)], allowzero=int(c.attr("allowzero", 0)))


@importer("Expand")
def _expand(c: NodeCtx) -> Tensor:
    return _apply(c, "expand", [c.x(0), c.int_vector(1)])


@importer("Transpose")
def _transpose(c: NodeCtx) -> Tensor:
    perm = c.attr("perm", None)
    return ops.transpose(c.x(0), None if perm is None else tuple(int(p) for p in perm))


@importer("Flatten")
def _flatten(c: NodeCtx) -> Tensor:
    return ops.flatten(c.x(0), int(c.attr("axis", 1)))


@importer("Concat")
def _concat(c: NodeCtx) -> Tensor:
    return _apply(c, "concat", c.xs(), axis=int(c.attr("axis")))


@importer("Squeeze")
def _squeeze(c: NodeCtx) -> Tensor:
    """Axes as an attribute (opset < 13) or an optional input (>= 13); none: all 1-dims."""
    axes = c.ints(1, "axes") if c.has(1) else c.attr("axes", None)
    return ops.squeeze(c.x(0), None if axes is None else tuple(int(a) for a in axes))


@importer("Unsqueeze")
def _unsqueeze(c: NodeCtx) -> Tensor:
    """Axes as an attribute (opset < 13) or an input (>= 13)."""
    axes = c.ints(1, "axes") if c.has(1) else c.attr("axes")
    return ops.unsqueeze(c.x(0), tuple(int(a) for a in axes))


@importer("Shape")
def _shape(c: NodeCtx) -> Tensor:
    end = c.attr("end", None)
    return ops.shape(c.x(0), int(c.attr("start", 0)), None if end is None else int(end))


@importer("ConstantOfShape")
def _constant_of_shape(c: NodeCtx) -> Tensor:
    value = np.asarray(c.attr("value", np.zeros(1, np.float32)))
    return _apply(c, "constant_of_shape", [c.int_vector(0)], value=value.reshape(()))


@importer("Gather")
def _gather(c: NodeCtx) -> Tensor:
    return _apply(c, "gather", [c.x(0), c.x(1)], axis=int(c.attr("axis", 0)))


@importer("Slice")
def _slice(c: NodeCtx) -> Tensor:
    """starts/ends/axes as attributes (opset < 10) or inputs with optional steps (>= 10)."""
    x = c.x(0)
    if c.opset < 10:
        starts, ends = c.attr("starts"), c.attr("ends")
        return ops.slice_(x, list(starts), list(ends), axes=c.attr("axes", None))
    axes = c.int_vector(3) if c.has(3) else None
    steps = c.int_vector(4) if c.has(4) else None
    return ops.slice_(x, c.int_vector(1), c.int_vector(2), axes=axes, steps=steps)


@importer("Range")
def _range(c: NodeCtx) -> Tensor:
    return _apply(c, "range", [c.x(0), c.x(1), c.x(2)])


@importer("GatherElements")
def _gather_elements(c: NodeCtx) -> Tensor:
    return ops.gather_elements(c.x(0), c.x(1), int(c.attr("axis", 0)))


@importer("Dropout")
def _dropout(c: NodeCtx) -> Tensor:
    """Inference-mode dropout is the identity; a training-mode node cannot be imported."""
    training = c.static(2)
    if (c.has(2) and (training is None or bool(np.asarray(training)))) or \
            (c.opset < 7 and not c.attr("is_test", 0)):
        raise c.fail("dropout in training mode is not supported; export the model in eval mode")
    return _apply(c, "identity", [c.x(0)])


# -- losses ------------------------------------------------------------------------------------


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
