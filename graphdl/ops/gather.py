"""Gather (ONNX Gather: ``numpy.take`` along an axis) and its adjoint, scatter_add_axis: the
gradient adds g back at the gathered positions with one ScatterElements (scatter.py), the
indices flattened and broadcast over the updates; for a constant run of consecutive indices it
is g padded with zeros instead. Gathering from a known shape vector gives a
known vector, so shapes computed in a graph stay known.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.builder import Tensor, user_location
from ..core.errors import DTypeError, ShapeError
from ..core.registry import Call, OpDef, onnx_op, register
from ..core.types import Shape, TensorType, dim_prod, dims_equal, shape_str
from .common import norm_axis
from .scatter import INDEX_DTYPES, scatter_add
from .pad import pad
from .shape import expand, reshape, shape, shape_of, unsqueeze, zeros_like
from .slice import concat


# -- gather ------------------------------------------------------------------------------------


def _gather_infer(types: list, attrs: dict) -> list[TensorType]:
    x, idx = types
    if idx.dtype not in INDEX_DTYPES:
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
    """Scatter-add of g back to the gathered positions (repeated indices accumulate); g padded
    with zeros when they are one run of consecutive indices known when the graph is built."""
    x, idx = c.inputs
    if not x.dtype.is_float:
        return [None, None]
    dense = _padded_grad(x, idx, gys[0], c.attrs["axis"])
    if dense is not None:
        return [dense, None]
    return [scatter_add_axis(zeros_like(x), idx, gys[0], c.attrs["axis"]), None]


def _padded_grad(x: Tensor, idx: Tensor, g: Tensor, axis: int) -> Tensor | None:
    """Gather's adjoint as a Pad of g, or None: for a constant scalar index or a constant run
    k, k+1, ... on an axis of static size. That is how PyTorch's exports split a fused
    projection (Gather of index 0, 1, 2 from the stacked query, key and value), where the
    ScatterElements took 30% of a transformer encoder's training step in onnxruntime (``graphdl
    profile``) and the Pad is a plain copy: the transformer entry of ``python -m benchmarks
    --only realistic`` went from 1.13x to 0.78x PyTorch eager's time."""
    known, n = idx.type.known, None if x.shape is None else x.shape[axis]
    if known is None or not isinstance(n, int) or idx.shape is None or len(idx.shape) > 1:
        return None
    ks = [int(k) + n if int(k) < 0 else int(k) for k in known]
    if not ks or ks != list(range(ks[0], ks[0] + len(ks))) or not 0 <= ks[0] <= ks[-1] < n:
        return None
    r = x.type.rank
    axis = norm_axis(axis, r, "gather axis")
    widths = [0] * (2 * r)
    widths[axis], widths[r + axis] = ks[0], n - ks[-1] - 1
    return pad(unsqueeze(g, (axis,)) if len(idx.shape) == 0 else g, widths)


register(OpDef("gather", _gather_infer, (2, 2), kernel=_gather_kernel, lower=onnx_op("Gather"),
               slots={0: "table"},
               vjp=_gather_vjp, attrs={"axis": 0}))


def gather(x: Tensor, indices: Tensor | Sequence[int] | int, axis: int = 0) -> Tensor:
    """ONNX Gather: ``numpy.take(x, indices, axis)``."""
    idx = indices if isinstance(indices, Tensor) else x.b.const(np.asarray(indices, np.int64))
    return x.b.apply1("gather", [x, idx], axis=axis)


# -- the adjoint of Gather ---------------------------------------------------------------------


def _dims(t: Tensor, lo: int, hi: int) -> Tensor:
    """t.shape[lo:hi] as an int64 vector: a constant when static, else a ``shape`` node."""
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
