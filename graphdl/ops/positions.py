"""Ops defined by positions along axes: trilu (triangles of matrices: causal masks), cumsum
(position ids, exclusive scans), argmax (predictions) and one_hot (ONNX OneHot, with its
off/on values). The diagonal offset, the scan axis and the depth are attributes: graphdl
needs them when it builds the graph (the importers read them from constants)."""
from __future__ import annotations

import numpy as np

from ..core.builder import Tensor
from ..core.errors import DTypeError, ShapeError
from ..core.registry import REQUIRED, Call, OpDef, no_grad, register
from ..core.types import DType, TensorType, shape_str
from .common import WIDEN_ORDERED, WIDEN_WRAPPING, norm_axis
from .reduce import reduce_sum
from .shape import reshape
from .slice import concat


def _same_infer(types: list, attrs: dict) -> list[TensorType]:
    return [TensorType(types[0].dtype, types[0].shape)]


# -- trilu -------------------------------------------------------------------------------------


def _trilu_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    if x.shape is not None and len(x.shape) < 2:
        raise ShapeError(f"trilu needs a rank >= 2 input, got {shape_str(x.shape)}")
    return _same_infer(types, attrs)


def _trilu_kernel(x: np.ndarray, *, k: int, upper: bool) -> np.ndarray:
    return np.triu(x, k) if upper else np.tril(x, k)


def _trilu_vjp(b, c: Call, gys):
    """Keeping a triangle is linear and self-adjoint: keep the same triangle of g."""
    return [trilu(gys[0], c.attrs["k"], c.attrs["upper"])]


def _trilu_lower(ctx, node) -> None:
    k = ctx.const(np.asarray(node.attrs["k"], np.int64))
    ctx.emit("Trilu", [node.inputs[0], k], node.outputs, upper=int(node.attrs["upper"]))


register(OpDef("trilu", _trilu_infer, (1, 1), kernel=_trilu_kernel, lower=_trilu_lower,
               widen=WIDEN_WRAPPING,  # selection: any injective cast round-trips
               vjp=_trilu_vjp, attrs={"k": 0, "upper": True},
               doc="the upper (or lower) triangle of the last two axes from diagonal k on."))


def trilu(x: Tensor, k: int = 0, upper: bool = True) -> Tensor:
    """np.triu(x, k) (or np.tril with ``upper=False``) over the last two axes."""
    return x.b.apply1("trilu", [x], k=int(k), upper=bool(upper))


# -- cumsum ------------------------------------------------------------------------------------


def _cumsum_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    if x.dtype == DType.bool or x.dtype.is_string:
        raise DTypeError(f"cumsum needs numbers, got {x.dtype.name}")
    if x.shape is not None:
        norm_axis(attrs["axis"], len(x.shape), "cumsum axis")
    return _same_infer(types, attrs)


def _cumsum_kernel(x: np.ndarray, *, axis: int, exclusive: bool, reverse: bool) -> np.ndarray:
    axis %= max(x.ndim, 1)
    y = np.flip(x, axis) if reverse else x
    y = np.cumsum(y, axis=axis, dtype=x.dtype)
    if exclusive:
        y = np.concatenate([np.zeros_like(np.take(y, [0], axis=axis)),
                            np.take(y, np.arange(y.shape[axis] - 1), axis=axis)], axis=axis)
    return np.ascontiguousarray(np.flip(y, axis)) if reverse else y


def _cumsum_vjp(b, c: Call, gys):
    """The adjoint of a forward scan is the backward scan with the same exclusivity."""
    if not c.inputs[0].dtype.is_float:
        return [None]
    a = c.attrs
    return [cumsum(gys[0], a["axis"], a["exclusive"], not a["reverse"])]


def _cumsum_lower(ctx, node) -> None:
    a = node.attrs
    ctx.emit("CumSum", [node.inputs[0], ctx.const(np.asarray(a["axis"], np.int64))],
             node.outputs, exclusive=int(a["exclusive"]), reverse=int(a["reverse"]))


register(OpDef("cumsum", _cumsum_infer, (1, 1), kernel=_cumsum_kernel, lower=_cumsum_lower,
               widen=WIDEN_WRAPPING,
               vjp=_cumsum_vjp, attrs={"axis": REQUIRED, "exclusive": False, "reverse": False},
               doc="running sums along axis (exclusive: without the element itself)."))


def cumsum(x: Tensor, axis: int, exclusive: bool = False, reverse: bool = False) -> Tensor:
    return x.b.apply1("cumsum", [x], axis=int(axis), exclusive=bool(exclusive),
                      reverse=bool(reverse))


# -- argmax ------------------------------------------------------------------------------------


def _argmax_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    if x.shape is None:
        return [TensorType(DType.int64, None)]
    axis = norm_axis(attrs["axis"], len(x.shape), "argmax axis")
    if attrs["keepdims"]:
        out = tuple(1 if i == axis else d for i, d in enumerate(x.shape))
    else:
        out = x.shape[:axis] + x.shape[axis + 1:]
    return [TensorType(DType.int64, out)]


def _argmax_kernel(x: np.ndarray, *, axis: int, keepdims: bool,
                   select_last_index: bool) -> np.ndarray:
    axis %= max(x.ndim, 1)
    if select_last_index:
        i = x.shape[axis] - 1 - np.argmax(np.flip(x, axis), axis=axis, keepdims=keepdims)
    else:
        i = np.argmax(x, axis=axis, keepdims=keepdims)
    return np.asarray(i, np.int64)


def _argmax_lower(ctx, node) -> None:
    a = node.attrs
    ctx.emit("ArgMax", node.inputs, node.outputs, axis=a["axis"], keepdims=int(a["keepdims"]),
             select_last_index=int(a["select_last_index"]))


register(OpDef("argmax", _argmax_infer, (1, 1), kernel=_argmax_kernel, lower=_argmax_lower,
               widen=WIDEN_ORDERED,
               vjp=no_grad, attrs={"axis": 0, "keepdims": True, "select_last_index": False},
               traits={"nondiff"}, doc="the index of the largest element along axis."))


def argmax(x: Tensor, axis: int = -1, keepdims: bool = False,
           select_last_index: bool = False) -> Tensor:
    """int64 index of the maximum along ``axis`` (the first one unless select_last_index)."""
    return x.b.apply1("argmax", [x], axis=int(axis), keepdims=bool(keepdims),
                      select_last_index=bool(select_last_index))


# -- one_hot_values (ONNX OneHot) --------------------------------------------------------------


def _onehot_infer(types: list, attrs: dict) -> list[TensorType]:
    idx, values = types
    if idx.dtype == DType.bool or idx.dtype.is_string:
        raise DTypeError(f"one_hot indices must be numbers, got {idx.dtype.name}")
    if values.shape is not None and tuple(values.shape) != (2,):
        raise ShapeError(f"one_hot values must be [off, on], got {shape_str(values.shape)}")
    if attrs["depth"] < 1:
        raise ShapeError(f"one_hot depth must be >= 1, got {attrs['depth']}")
    if idx.shape is None:
        return [TensorType(values.dtype, None)]
    axis = norm_axis(attrs["axis"], len(idx.shape) + 1, "one_hot axis")
    return [TensorType(values.dtype, idx.shape[:axis] + (attrs["depth"],) + idx.shape[axis:])]


def _onehot_mask(idx: np.ndarray, depth: int, axis: int) -> np.ndarray:
    axis %= idx.ndim + 1
    i = np.asarray(idx).astype(np.int64)  # ONNX casts float indices to int
    i = np.where(i < 0, i + depth, i)
    classes = np.arange(depth).reshape((-1,) + (1,) * (idx.ndim - axis))
    return np.expand_dims(i, axis) == classes


def _onehot_kernel(idx: np.ndarray, values: np.ndarray, *, depth: int, axis: int) -> np.ndarray:
    return np.where(_onehot_mask(idx, depth, axis), values[1], values[0])


def _onehot_vjp(b, c: Call, gys):
    """d off = sum of g where off, d on = sum of g where on: one mask, two sums."""
    on = one_hot_values(c.inputs[0], b.const(np.asarray([0, 1], c.inputs[1].dtype.np)),
                        c.attrs["depth"], c.attrs["axis"])
    g = gys[0]
    s_on, s_all = reduce_sum(g * on), reduce_sum(g)
    return [None, concat([reshape(s_all - s_on, [1]), reshape(s_on, [1])], 0)]


def _onehot_lower(ctx, node) -> None:
    """ONNX OneHot; where onnxruntime lacks its kernel (values other than float32, int32 or
    int64) the mask by Equal against the classes, then values[mask] by Gather (which
    onnxruntime has for every dtype)."""
    idx, values = node.inputs
    a = node.attrs
    if values.type.dtype in (DType.float32, DType.int32, DType.int64):
        depth = ctx.const(np.asarray([a["depth"]], np.int64))
        ctx.emit("OneHot", [idx, depth, values], node.outputs, axis=a["axis"])
        return
    rank = idx.type.rank
    axis = a["axis"] % (rank + 1)
    (i,) = ctx.emit("Cast", [idx], 1, to=DType.int64.onnx)
    (neg,) = ctx.emit("Less", [i, ctx.const(np.zeros((), np.int64))])
    (up,) = ctx.emit("Add", [i, ctx.const(np.asarray(a["depth"], np.int64))])
    (i,) = ctx.emit("Where", [neg, up, i])
    (i,) = ctx.emit("Unsqueeze", [i, ctx.const(np.asarray([axis], np.int64))])
    classes = np.arange(a["depth"], dtype=np.int64).reshape((-1,) + (1,) * (rank - axis))
    (hit,) = ctx.emit("Equal", [i, ctx.const(classes)])
    (pick,) = ctx.emit("Cast", [hit], 1, to=DType.int64.onnx)
    ctx.emit("Gather", [values, pick], node.outputs, axis=0)  # any dtype: values[hit]


register(OpDef("one_hot_values", _onehot_infer, (2, 2), kernel=_onehot_kernel,
               lower=_onehot_lower, vjp=_onehot_vjp, attrs={"depth": REQUIRED, "axis": -1},
               doc="ONNX OneHot: a new axis of length depth holding on at the index, else off."))


def one_hot_values(indices: Tensor, values: Tensor, depth: int, axis: int = -1) -> Tensor:
    """ONNX OneHot: ``values[1]`` where the new axis's position equals the index (negative
    indices wrap), ``values[0]`` elsewhere."""
    return indices.b.apply1("one_hot_values", [indices, values], depth=int(depth),
                            axis=int(axis))

