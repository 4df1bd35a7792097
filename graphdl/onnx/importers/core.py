"""Importers of the core ops: elementwise, Constant, activations (PRelu, Selu, Softplus and
Shrink as graphdl primitives), linalg, reductions, LRN, InstanceNormalization, and Dropout at
inference. Where an ONNX op changed between opsets (explicit ``broadcast``/``axis``
before opset 7, axes as an attribute or an input, Softmax's 2-D coercion before opset 13), the
function reads both forms natively.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from ... import ops
from ...core.builder import Tensor
from ..importer import NodeCtx
from ...ops.dropout import random_keep_mask
from ...core.types import DType
from . import importer


def _apply(c: NodeCtx, op: str, ins: Sequence[Tensor | None], **attrs: Any) -> Tensor:
    return c.b.apply1(op, ins, **attrs)


# -- elementwise -------------------------------------------------------------------------------

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Equal": "equal",
           "Less": "less", "Greater": "greater", "LessOrEqual": "less_or_equal",
           "GreaterOrEqual": "greater_or_equal", "MatMul": "matmul", "And": "logical_and",
           "Or": "logical_or", "Xor": "logical_xor"}
_UNARY = {"Neg": "neg", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Abs": "abs",
          "Reciprocal": "reciprocal", "Sign": "sign", "Relu": "relu", "Sigmoid": "sigmoid",
          "Tanh": "tanh", "Identity": "identity", "Not": "logical_not"}


@importer(*_BINARY)
def _binary(c: NodeCtx) -> Tensor:
    x, y = c.x(0), c.x(1)
    if c.node.op_type != "MatMul":
        y = _legacy_broadcast(c, x, y)
    return _apply(c, _BINARY[c.node.op_type], [x, y])


def _legacy_broadcast(c: NodeCtx, x: Tensor, y: Tensor) -> Tensor:
    """Before opset 7, ``broadcast=1`` with ``axis`` aligned y's dims with x's from ``axis``
    on (numpy aligns trailing dims): y gets trailing 1-dims to match."""
    if c.opset >= 7 or not c.attr("broadcast", 0) or "axis" not in c.attrs:
        return y
    rx, ry = x.type.rank, y.type.rank
    if rx is None or ry is None:
        raise c.fail(f"broadcast with axis needs known ranks, got {x.type} and {y.type}")
    extra = rx - int(c.attr("axis")) % max(rx, 1) - ry
    return ops.unsqueeze(y, tuple(range(ry, ry + extra))) if extra > 0 else y


@importer(*_UNARY)
def _unary(c: NodeCtx) -> Tensor:
    return _apply(c, _UNARY[c.node.op_type], [c.x(0)])


@importer("Pow")
def _pow(c: NodeCtx) -> Tensor:
    """ONNX lets the exponent's type differ from the base's; graphdl casts it to the base's."""
    x, y = c.x(0), c.x(1)
    y = _legacy_broadcast(c, x, y)
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


@importer("CastLike")
def _cast_like(c: NodeCtx) -> Tensor:
    return ops.cast(c.x(0), c.x(1).dtype)


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
    if len(c.attrs) != 1:
        raise c.fail(f"needs exactly one value attribute, got {sorted(c.attrs)}")
    ((key, v),) = c.attrs.items()
    makers = {"value": np.asarray, "sparse_value": _dense,
              "value_float": lambda a: np.asarray(a, np.float32),
              "value_floats": lambda a: np.asarray(a, np.float32),
              "value_int": lambda a: np.asarray(a, np.int64),
              "value_ints": lambda a: np.asarray(a, np.int64)}
    if key not in makers:
        raise c.fail(f"attribute {key!r} is not supported (graphdl has no string tensors); "
                     f"it reads {sorted(makers)}")
    arr = makers[key](v)
    DType.of(arr.dtype)  # refuses element types graphdl lacks
    return c.defer_constant(arr)


def _dense(sp: onnx.SparseTensorProto) -> np.ndarray:
    """A sparse tensor's dense value: indices are linear [NNZ] or coordinates [NNZ, rank]."""
    values = numpy_helper.to_array(sp.values)
    indices = numpy_helper.to_array(sp.indices)
    dims = tuple(int(d) for d in sp.dims)
    dense = np.zeros(int(np.prod(dims)), values.dtype)
    if indices.ndim == 2:
        indices = np.ravel_multi_index(tuple(indices.T), dims)
    dense[indices] = values
    return dense.reshape(dims)


# -- activations -------------------------------------------------------------------------------


@importer("LeakyRelu")
def _leaky_relu(c: NodeCtx) -> Tensor:
    return _apply(c, "leaky_relu", [c.x(0)], alpha=float(c.attr("alpha", 0.01)))


@importer("Elu")
def _elu(c: NodeCtx) -> Tensor:
    return _apply(c, "elu", [c.x(0)], alpha=float(c.attr("alpha", 1.0)))


@importer("PRelu")
def _prelu(c: NodeCtx) -> Tensor:
    """x where x >= 0 else slope * x. Before opset 7 a 1-D slope is per channel (axis 1); from
    opset 7 it broadcasts as numpy does."""
    x, slope = c.x(0), c.x(1)
    rank = x.type.rank
    if c.opset < 7 and slope.type.rank == 1 and rank is not None and rank > 2:
        slope = ops.unsqueeze(slope, tuple(range(1, rank - 1)))
    return ops.where(x < 0.0, x * slope, x)


@importer("Selu")
def _selu(c: NodeCtx) -> Tensor:
    alpha = float(c.attr("alpha", 1.67326319217681884765625))
    gamma = float(c.attr("gamma", 1.05070102214813232421875))
    x = c.x(0)
    return ops.where(x > 0.0, x * gamma, (ops.exp(x) - 1.0) * (alpha * gamma))


@importer("Softplus")
def _softplus(c: NodeCtx) -> Tensor:
    """log(1 + exp(x)), computed as relu(x) + log(1 + exp(-|x|)) so it cannot overflow."""
    x = c.x(0)
    return ops.relu(x) + ops.log(ops.exp(-abs(x)) + 1.0)


@importer("Shrink")
def _shrink(c: NodeCtx) -> Tensor:
    lambd, bias = float(c.attr("lambd", 0.5)), float(c.attr("bias", 0.0))
    x = c.x(0)
    zero = c.b.const(np.zeros((), x.dtype.np))
    return ops.where(x < -lambd, x + bias, ops.where(x > lambd, x - bias, zero))


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


# -- normalisation and regularisers at inference -----------------------------------------------


@importer("LRN")
def _lrn(c: NodeCtx) -> Tensor:
    return ops.lrn(c.x(0), int(c.attr("size")), float(c.attr("alpha", 1e-4)),
                   float(c.attr("beta", 0.75)), float(c.attr("bias", 1.0)))


@importer("InstanceNormalization")
def _instance_norm(c: NodeCtx) -> Tensor:
    """scale * (x - mean) / sqrt(var + epsilon) + B, statistics per item and channel over the
    spatial axes."""
    x, scale, bias = c.x(0), c.x(1), c.x(2)
    rank = x.type.rank
    if rank is None or rank < 3:
        raise c.fail(f"needs an input [N, C, D1, ...] of known rank >= 3, got {x.type}")
    axes = tuple(range(2, rank))
    centred = x - ops.reduce_mean(x, axes, keepdims=True)
    var = ops.reduce_mean(centred * centred, axes, keepdims=True)
    per_channel = tuple(range(1, rank - 1))
    y = centred / ops.sqrt(var + float(c.attr("epsilon", 1e-5)))
    return y * ops.unsqueeze(scale, per_channel) + ops.unsqueeze(bias, per_channel)


@importer("Dropout")
def _dropout(c: NodeCtx) -> list[Tensor]:
    """Dropout at inference, or with ratio 0, is the identity with an all-true mask. In
    training mode (``training_mode`` true from opset 12, ``is_test=0`` before opset 7; opsets 7
    to 11 have no training mode) it keeps each unit with probability 1 - ratio by a mask drawn
    in the graph (``random_keep_mask``, the node's seed) and scales the kept ones by
    1 / (1 - ratio), as ONNX defines it; ratio and mode must be known at import time."""
    ratio = c.static(1) if c.has(1) else c.attr("ratio", 0.5)
    x = c.x(0)
    if not _dropout_training(c) or (ratio is not None and float(np.asarray(ratio)) == 0.0):
        y = _apply(c, "identity", [x])
        if len(c.node.output) < 2 or not c.node.output[1]:
            return [y]
        return [y, _apply(c, "constant_of_shape", [ops.shape_of(x)], value=np.asarray(True))]
    if ratio is None:
        raise c.fail("dropout in training mode needs its ratio known at import time (an "
                     "initializer or Constant)")
    rate = float(np.asarray(ratio))
    seed = c.attr("seed", None)
    keep = random_keep_mask(x, rate, None if seed is None else int(seed))
    y = ops.dropout(x, keep, rate)
    if len(c.node.output) < 2 or not c.node.output[1]:
        return [y]
    return [y, ops.cast(keep, "bool")]


def _dropout_training(c: NodeCtx) -> bool:
    if c.has(2):
        training = c.static(2)
        if training is None:
            raise c.fail("dropout's training_mode must be known at import time (an "
                         "initializer or Constant)")
        return bool(np.asarray(training))
    return c.opset < 7 and not c.attr("is_test", 0)
