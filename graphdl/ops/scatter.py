"""Indexing along an axis: gather (ONNX Gather), gather_elements (ONNX GatherElements) and
scatter_add (ONNX ScatterElements with reduction='add'), scatter_reduce (reduction 'mul', 'max'
or 'min'), and scatter_add_axis, the adjoint of gather, built from scatter_add.

gather_elements and scatter_add take an index tensor of the data's rank: position ``i`` reads
(or adds to) the data at ``i`` with its ``axis`` component replaced by ``indices[i]``. The two are
each other's adjoint. Negative indices wrap everywhere.

Gather also follows shape vectors: gathering from a known vector gives a known vector.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor, user_location
from ..core.errors import DTypeError, GradError, ShapeError
from ..core.registry import REQUIRED, Call, OpDef, onnx_op, register
from ..core.types import DType, Shape, TensorType, dim_prod, dims_equal, shape_str
from .common import norm_axis, same_dtype
from .scatter_onehot import emit_scatter_add

_INDEX_DTYPES = (DType.int64, DType.int32)


def _check_indices(data: TensorType, idx: TensorType, axis: int) -> int:
    """The normalised axis; errors unless idx is an int tensor of data's rank that fits data
    on every other axis."""
    if idx.dtype not in _INDEX_DTYPES:
        raise DTypeError(f"indices must be int64 or int32, got {idx.dtype.name}")
    if data.shape is None or idx.shape is None:
        return axis
    if len(data.shape) == 0 or len(idx.shape) != len(data.shape):
        raise ShapeError(f"indices {shape_str(idx.shape)} must have the rank (>= 1) of the "
                         f"data {shape_str(data.shape)}")
    axis = norm_axis(axis, len(data.shape))
    for i, (d, n) in enumerate(zip(data.shape, idx.shape)):
        if i != axis and isinstance(d, int) and isinstance(n, int) and n > d:
            raise ShapeError(f"indices {shape_str(idx.shape)} exceed the data "
                             f"{shape_str(data.shape)} on axis {i}")
    return axis


def _index(idx: np.ndarray, axis: int, n: int) -> tuple[np.ndarray, ...]:
    """A NumPy advanced index selecting, for each position of idx, the element it names."""
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"index out of range [{-n}, {n}) on axis {axis}")
    grid = list(np.indices(idx.shape, sparse=True))
    grid[axis] = np.where(idx < 0, idx + n, idx).astype(np.intp)
    return tuple(grid)


# -- gather ------------------------------------------------------------------------------------


def _gather_infer(types: list, attrs: dict) -> list[TensorType]:
    x, idx = types
    if idx.dtype not in _INDEX_DTYPES:
        raise DTypeError(f"gather indices must be int64 or int32, got {idx.dtype.name}")
    if x.shape is None or idx.shape is None:
        return [TensorType(x.dtype, None)]
    axis = norm_axis(attrs["axis"], len(x.shape), "gather axis")
    out = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
    known = None
    if x.known is not None and idx.known is not None and len(x.shape) == 1 and \
            all(isinstance(i, int) for i in idx.known):
        n = len(x.known)
        if any(not -n <= i < n for i in idx.known):
            raise ShapeError(f"gather index {list(idx.known)} out of range for size {n}")
        known = tuple(x.known[i] for i in idx.known)
    return [TensorType(x.dtype, out, known)]


def _gather_kernel(x: np.ndarray, idx: np.ndarray, *, axis: int) -> np.ndarray:
    n = x.shape[axis]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"gather index out of range [{-n}, {n}) on axis {axis}")
    return np.take(x, idx.astype(np.int64), axis=axis)


def _gather_vjp(b, c: Call, gys):
    """Scatter-add of g back to the gathered positions (repeated indices accumulate)."""
    from .shape import zeros_like

    x, idx = c.inputs
    if not x.dtype.is_float:
        return [None, None]
    return [scatter_add_axis(zeros_like(x), idx, gys[0], c.attrs["axis"]), None]


register(OpDef("gather", _gather_infer, (2, 2), kernel=_gather_kernel, lower=onnx_op("Gather"),
               slots={0: "table"},
               vjp=_gather_vjp, attrs={"axis": 0}))


def gather(x: Tensor, indices: Tensor | Sequence[int] | int, axis: int = 0) -> Tensor:
    """ONNX Gather: ``numpy.take(x, indices, axis)``."""
    idx = indices if isinstance(indices, Tensor) else x.b.const(np.asarray(indices, np.int64))
    return x.b.apply1("gather", [x, idx], axis=axis)


# -- gather_elements ---------------------------------------------------------------------------


def _gather_elements_infer(types: list, attrs: dict) -> list[TensorType]:
    x, idx = types
    _check_indices(x, idx, attrs["axis"])
    return [TensorType(x.dtype, idx.shape)]


def _gather_elements_kernel(x: np.ndarray, idx: np.ndarray, *, axis: int) -> np.ndarray:
    axis %= x.ndim
    return np.asarray(x[_index(idx, axis, x.shape[axis])])


def _gather_elements_vjp(b, c: Call, gys):
    from .shape import zeros_like

    x, idx = c.inputs
    return [scatter_add(zeros_like(x), idx, gys[0], c.attrs["axis"]), None]


register(OpDef("gather_elements", _gather_elements_infer, (2, 2),
               kernel=_gather_elements_kernel,
               lower=lambda ctx, n: ctx.emit("GatherElements", n.inputs, n.outputs,
                                             axis=n.attrs["axis"]),
               vjp=_gather_elements_vjp, attrs={"axis": REQUIRED},
               doc="out[i] = x[i with its axis component replaced by indices[i]]."))


def gather_elements(x: Tensor, indices: Tensor, axis: int) -> Tensor:
    """ONNX GatherElements: ``numpy.take_along_axis`` (indices may be smaller off the axis)."""
    return x.b.apply1("gather_elements", [x, indices], axis=axis)


# -- scatter_add -------------------------------------------------------------------------------


def _scatter_add_infer(types: list, attrs: dict) -> list[TensorType]:
    data, idx, upd = types
    dt = same_dtype([data, upd], "scatter_add's data and updates")
    _check_indices(data, idx, attrs["axis"])
    if idx.shape is not None and upd.shape is not None and (
            len(idx.shape) != len(upd.shape)
            or any(dims_equal(a, c) is False for a, c in zip(idx.shape, upd.shape))):
        raise ShapeError(f"updates {shape_str(upd.shape)} must have the shape of the indices "
                         f"{shape_str(idx.shape)}")
    return [TensorType(dt, data.shape)]


def _scatter_add_kernel(data: np.ndarray, idx: np.ndarray, upd: np.ndarray, *,
                        axis: int) -> np.ndarray:
    """A copy of data with the updates added; repeated indices accumulate (np.add.at)."""
    axis %= data.ndim
    out = np.array(data, copy=True)
    rows = _whole_rows(data, idx, axis)
    if rows is not None:  # gather's adjoint (embedding gradients): whole slices at a time
        _add_rows(np.moveaxis(out, axis, 0), rows, np.moveaxis(upd, axis, 0))
        return out
    np.add.at(out, _index(idx, axis, data.shape[axis]), upd)
    return out


def _whole_rows(data: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray | None:
    """The index vector along ``axis`` when idx names whole slices of data (the same index
    across every other axis, which spans data's), as scatter_add_axis builds it; else None."""
    others = idx.shape[:axis] + idx.shape[axis + 1:]
    if idx.ndim < 2 or others != data.shape[:axis] + data.shape[axis + 1:] or idx.size == 0:
        return None
    first = idx[(0,) * axis + (slice(None),) + (0,) * (idx.ndim - axis - 1)]
    shape = [1] * idx.ndim
    shape[axis] = -1
    if not np.all(idx == first.reshape(shape)):
        return None
    n = data.shape[axis]
    if first.min() < -n or first.max() >= n:
        raise IndexError(f"index out of range [{-n}, {n}) on axis {axis}")
    return np.where(first < 0, first + n, first)


def _add_rows(out: np.ndarray, rows: np.ndarray, upd: np.ndarray) -> None:
    """out[rows[i]] += upd[i], repeated rows summed: sorted, then one reduceat per run of
    equal rows (several times faster than np.add.at on elements)."""
    order = np.argsort(rows, kind="stable")
    ranked = rows[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    out[ranked[starts]] += np.add.reduceat(upd[order], starts, axis=0)


def _scatter_add_lower(ctx: Any, node: Any) -> None:
    """-> ScatterElements(reduction='add') from opset 16, one-hot sums before."""
    data, idx, upd = node.inputs
    emit_scatter_add(ctx, data, idx, upd, node.attrs["axis"], node.outputs[0],
                     len(data.type.shape), data.type.dtype.onnx)


def _scatter_add_vjp(b, c: Call, gys):
    """out = data + S(updates) with S linear: d data = g, d updates = S^T g = gather of g."""
    (g,), idx = gys, c.inputs[1]
    return [g, None, gather_elements(g, idx, c.attrs["axis"])]


register(OpDef("scatter_add", _scatter_add_infer, (3, 3), kernel=_scatter_add_kernel,
               lower=_scatter_add_lower, vjp=_scatter_add_vjp, attrs={"axis": REQUIRED},
               doc="data with updates[i] added at i's position, axis component = indices[i]."))


def scatter_add(data: Tensor, indices: Tensor, updates: Tensor, axis: int) -> Tensor:
    """ONNX ScatterElements(reduction='add'); indices and updates share one shape."""
    return data.b.apply1("scatter_add", [data, indices, updates], axis=axis)


# -- scatter_reduce: ScatterElements with reduction mul, max or min -----------------------------

#: reduction -> (the numpy ufunc whose ``.at`` applies it, the opset ScatterElements gained it)
_REDUCTIONS = {"mul": (np.multiply, 16), "max": (np.maximum, 18), "min": (np.minimum, 18)}


def _scatter_reduce_infer(types: list, attrs: dict) -> list[TensorType]:
    if attrs["reduction"] not in _REDUCTIONS:
        raise ShapeError(f"scatter_reduce's reduction must be one of {sorted(_REDUCTIONS)}, "
                         f"got {attrs['reduction']!r} (use scatter_add for 'add')")
    return _scatter_add_infer(types, attrs)


def _scatter_reduce_kernel(data: np.ndarray, idx: np.ndarray, upd: np.ndarray, *, axis: int,
                           reduction: str) -> np.ndarray:
    """A copy of data combined with the updates; repeated indices all combine (ufunc.at)."""
    axis %= data.ndim
    out = np.array(data, copy=True)
    _REDUCTIONS[reduction][0].at(out, _index(idx, axis, data.shape[axis]), upd)
    return out


def _scatter_reduce_lower(ctx: Any, node: Any) -> None:
    """-> ScatterElements(reduction=...): 'mul' from opset 16, 'max'/'min' from 18."""
    reduction = node.attrs["reduction"]
    since = _REDUCTIONS[reduction][1]
    ctx.require_opset(since, node, f"ScatterElements with reduction {reduction!r}")
    ctx.emit("ScatterElements", node.inputs, node.outputs, axis=node.attrs["axis"],
             reduction=reduction)


def _scatter_reduce_vjp(b, c: Call, gys):
    """max/min: the gradient goes to the elements equal to the result (data where it won,
    updates where they won; tied elements each get it in full). mul is refused."""
    from .elementwise import where

    reduction = c.attrs["reduction"]
    if reduction == "mul":
        raise GradError(f"{c.node.where()}: scatter_reduce(reduction='mul') is not "
                        "differentiable in graphdl (w.r.t. data or updates)")
    (g,), (data, idx, upd), (out,) = gys, c.inputs, c.outputs
    axis = c.attrs["axis"]
    zero = b.const(np.zeros((), g.dtype.np))
    g_data = where(data.eq(out), g, zero)
    g_upd = where(upd.eq(gather_elements(out, idx, axis)), gather_elements(g, idx, axis), zero)
    return [g_data, None, g_upd]


register(OpDef("scatter_reduce", _scatter_reduce_infer, (3, 3), kernel=_scatter_reduce_kernel,
               lower=_scatter_reduce_lower, vjp=_scatter_reduce_vjp,
               attrs={"axis": REQUIRED, "reduction": REQUIRED},
               doc="data combined (mul, max or min) with updates[i] at i's position."))


def scatter_reduce(data: Tensor, indices: Tensor, updates: Tensor, axis: int,
                   reduction: str) -> Tensor:
    """ONNX ScatterElements with reduction 'mul', 'max' or 'min' (indices and updates share
    one shape; repeated indices all combine)."""
    return data.b.apply1("scatter_reduce", [data, indices, updates], axis=axis,
                         reduction=reduction)


# -- the adjoint of Gather ---------------------------------------------------------------------


def _dims(t: Tensor, lo: int, hi: int) -> Tensor:
    """t.shape[lo:hi] as an int64 vector: a constant when static, else a ``shape`` node."""
    from .shape import shape

    dims = t.shape[lo:hi]
    if all(isinstance(d, int) for d in dims):
        return t.b.const(np.asarray(dims, np.int64).reshape(-1))
    return shape(t, lo, hi)


def _gather_shape(base: Shape, idx: Shape | None, axis: int) -> Shape | None:
    return None if idx is None else tuple(base[:axis]) + tuple(idx) + tuple(base[axis + 1:])


def scatter_add_axis(base: Tensor, indices: Tensor | Sequence[int] | int, updates: Tensor,
                     axis: int) -> Tensor:
    """``base`` plus ``updates`` added at ``indices`` along ``axis``, with Gather's shapes:
    updates = base.shape[:axis] + indices.shape + base.shape[axis+1:]. This is the adjoint of
    ``gather(x, indices, axis)``: repeated indices accumulate, negative ones wrap.

    Built as one ScatterElements: the indices are flattened and broadcast over the updates."""
    from .shape import concat, expand, reshape, shape_of

    b = base.b
    idx = indices if isinstance(indices, Tensor) else b.const(np.asarray(indices, np.int64))
    where = f"scatter_add_axis at {user_location() or '?'}"
    if base.shape is None or len(base.shape) == 0:
        raise ShapeError(f"{where}: base {shape_str(base.shape)} needs a known rank >= 1")
    r = len(base.shape)
    axis = norm_axis(axis, r, "scatter_add_axis axis")
    want = _gather_shape(base.shape, idx.shape, axis)
    if want is not None and updates.shape is not None and (
            len(want) != len(updates.shape)
            or any(dims_equal(a, c) is False for a, c in zip(want, updates.shape))):
        raise ShapeError(f"{where}: updates "
                         f"{shape_str(updates.shape)} do not match base {shape_str(base.shape)}"
                         f" gathered at indices {shape_str(idx.shape)} on axis {axis} "
                         f"(expected {shape_str(want)})")
    if idx.type.rank != 1:  # fold the index dims of the updates into one
        k = dim_prod(idx.shape) if idx.shape is not None else None
        idx = reshape(idx, [-1])
        parts = [_dims(base, 0, axis), b.const(np.asarray([k if isinstance(k, int) else -1],
                                                          np.int64)), _dims(base, axis + 1, r)]
        updates = reshape(updates, concat([p for p in parts if p.shape != (0,)], 0),
                          allowzero=isinstance(k, int))
    if r > 1:  # the index vector along the axis, broadcast over the other axes
        idx = reshape(idx, [1] * axis + [-1] + [1] * (r - axis - 1))
    return scatter_add(base, expand(idx, shape_of(updates)), updates, axis)
