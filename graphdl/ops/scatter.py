"""Element-wise indexing along an axis: gather_elements (ONNX GatherElements), scatter_add
(ONNX ScatterElements with reduction='add') and scatter_reduce (reduction 'mul', 'max' or
'min'). Gather and its adjoint scatter_add_axis, built from scatter_add, are in gather.py.

gather_elements and scatter_add take an index tensor of the data's rank: position ``i`` reads
(or adds to) the data at ``i`` with its ``axis`` component replaced by ``indices[i]``. The two are
each other's adjoint. Negative indices wrap everywhere.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.builder import Tensor
from ..core.errors import DTypeError, GradError, ShapeError
from ..core.registry import REQUIRED, Call, OpDef, register
from ..core.types import DType, TensorType, dims_equal, shape_str
from .common import norm_axis, same_dtype
from .elementwise import where
from .scatter_onehot import emit_scatter_add
from .shape import zeros_like

#: the index dtypes that Gather and ScatterElements accept
INDEX_DTYPES = (DType.int64, DType.int32)


def _check_indices(data: TensorType, idx: TensorType, axis: int) -> int:
    """The normalised axis; errors unless idx is an int tensor of data's rank that fits data
    on every other axis."""
    if idx.dtype not in INDEX_DTYPES:
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


# -- gather_elements ---------------------------------------------------------------------------


def _gather_elements_infer(types: list, attrs: dict) -> list[TensorType]:
    x, idx = types
    _check_indices(x, idx, attrs["axis"])
    return [TensorType(x.dtype, idx.shape)]


def _gather_elements_kernel(x: np.ndarray, idx: np.ndarray, *, axis: int) -> np.ndarray:
    axis %= x.ndim
    return np.asarray(x[_index(idx, axis, x.shape[axis])])


def _gather_elements_vjp(b, c: Call, gys):
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
