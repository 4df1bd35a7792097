"""Slicing (ONNX Slice) and index ranges (ONNX Range).

``slice`` takes its starts, ends, axes and steps as int vectors, exactly like ONNX, so imported
models (PyTorch slices shape vectors) work. When their values are known at build time the output
dims are exact; a symbolic dim keeps its symbol under a full range (``0:INT64_MAX``,
``-1:-INT64_MAX:-1``), and slicing a known shape vector gives a known vector.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..builder import Tensor
from ..errors import DTypeError, ShapeError
from ..registry import Call, OpDef, no_grad, register
from ..types import DType, Dim, TensorType, dim_prod, dims_equal, shape_str
from .common import norm_axis

INT64_MAX = 2**63 - 1
#: an end at least this far out (either way) reaches past any real dim: "to the end"
FAR = 2**62
_INDEX_DTYPES = (DType.int64, DType.int32)
_NAMES = ("starts", "ends", "axes", "steps")


def slice_bounds(d: int, start: int, end: int, step: int) -> tuple[int, int]:
    """ONNX Slice's effective (start, end) on an axis of size ``d``: negatives count from the
    end, then both are clamped ([0, d] going forward, [-1, d-1] going backward)."""
    start += d if start < 0 else 0
    end += d if end < 0 else 0
    if step > 0:
        return min(max(start, 0), d), min(max(end, 0), d)
    return min(max(start, 0), d - 1), min(max(end, -1), d - 1)


def slice_len(d: int, start: int, end: int, step: int) -> int:
    s, e = slice_bounds(d, start, end, step)
    return max(0, -((s - e) // step))  # ceil((e - s) / step)


def is_full_range(start: int, end: int, step: int) -> bool:
    """True when the slice keeps a whole axis of any size, in order or reversed."""
    if step == 1:
        return (start == 0 or start <= -FAR) and end >= FAR
    if step == -1:
        return (start == -1 or start >= FAR) and end <= -FAR
    return False


def _slice_dim(d: Dim, start: Any, end: Any, step: Any) -> Dim:
    if not all(isinstance(v, int) for v in (start, end, step)):
        return None
    if isinstance(d, int):
        return slice_len(d, start, end, step)
    return d if is_full_range(start, end, step) else None


def _elem(known: tuple | None, j: int) -> Any:
    return known[j] if known is not None and j < len(known) else None


# -- shape rule --------------------------------------------------------------------------------


def _check_params(params: list[TensorType | None]) -> Dim:
    """The common length of the int vectors starts/ends/axes/steps (None if unknown)."""
    present = [(n, t) for n, t in zip(_NAMES, params) if t is not None]
    for n, t in present:
        if t.dtype not in _INDEX_DTYPES:
            raise DTypeError(f"{n} must be int64 or int32, got {t.dtype.name}")
        if t.shape is not None and len(t.shape) != 1:
            raise ShapeError(f"{n} must be a 1-D vector, got {shape_str(t.shape)}")
    if len({t.dtype for _, t in present}) > 1:
        raise DTypeError("starts, ends, axes and steps must share one dtype, got "
                         + ", ".join(f"{n} {t.dtype.name}" for n, t in present))
    lens = [(n, t.shape[0] if t.shape else None) for n, t in present]
    lens += [(n, len(t.known)) for n, t in present if t.known is not None]
    n = next((k for _, k in lens if k is not None), None)
    if any(dims_equal(k, n) is False for _, k in lens):
        raise ShapeError("starts, ends, axes and steps differ in length: "
                         + ", ".join(f"{nm} {k}" for nm, k in lens))
    return n


def _slice_axes(axes: TensorType | None, n: Dim, rank: int) -> tuple[int, ...] | None:
    """The sliced axes, normalised (None when not known at build time)."""
    if axes is None:
        if not isinstance(n, int):
            return None
        if n > rank:
            raise ShapeError(f"{n} starts for a rank-{rank} input")
        return tuple(range(n))
    if axes.known is None or not all(isinstance(a, int) for a in axes.known):
        return None
    out = tuple(norm_axis(a, rank, "slice axis") for a in axes.known)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in axes {list(axes.known)}")
    return out


def _slice_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    starts, ends, axes, steps = (list(types[1:]) + [None, None])[:4]
    n = _check_params([starts, ends, axes, steps])
    if x.shape is None:
        return [TensorType(x.dtype, None)]
    ax = _slice_axes(axes, n, len(x.shape))
    if ax is None:
        return [TensorType(x.dtype, (None,) * len(x.shape))]
    step_vals = (1,) * len(ax) if steps is None else steps.known
    if step_vals is not None and 0 in step_vals:
        raise ShapeError(f"slice step 0 in steps {list(step_vals)}")
    out = list(x.shape)
    picks = []
    for j, a in enumerate(ax):
        s, e, k = _elem(starts.known, j), _elem(ends.known, j), _elem(step_vals, j)
        out[a] = _slice_dim(out[a], s, e, k)
        picks.append((a, s, e, k))
    return [TensorType(x.dtype, tuple(out), _known_slice(x, picks))]


def _known_slice(x: TensorType, picks: list[tuple]) -> tuple | None:
    """The contents of a sliced known vector (a shape computed in the graph)."""
    if x.known is None or len(x.shape) != 1:
        return None
    vals = x.known
    for _, s, e, k in picks:
        if not all(isinstance(v, int) for v in (s, e, k)):
            return None
        vals = tuple(vals[i] for i in range(*slice_bounds(len(vals), s, e, k), k))
    return vals


# -- kernel, lowering, gradient ----------------------------------------------------------------


def _slice_kernel(x: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                  axes: np.ndarray | None = None, steps: np.ndarray | None = None) -> np.ndarray:
    n = len(starts)
    axes = range(n) if axes is None else [int(a) + (x.ndim if a < 0 else 0) for a in axes]
    steps = [1] * n if steps is None else steps
    index = [slice(None)] * x.ndim
    for a, s, e, k in zip(axes, starts, ends, steps):
        if k == 0:
            raise ValueError("slice step 0")
        s, e = slice_bounds(x.shape[a], int(s), int(e), int(k))
        index[a] = slice(s, e if e >= 0 else None, int(k))
    return x[tuple(index)]


def _slice_lower(ctx: Any, node: Any) -> None:
    ins = list(node.inputs)
    while ins[-1] is None:
        ins.pop()
    ctx.emit("Slice", ins, node.outputs)


def _slice_vjp(b, c: Call, gys):
    """g goes back to the sliced positions, zeros elsewhere: a Pad when every step is 1 and
    the bounds are known, else a scatter of g to the positions of an index grid sliced alike."""
    x, params = c.inputs[0], list(c.inputs[1:])
    nones = [None] * len(params)
    if not x.dtype.is_float:
        return [None] + nones
    pads = _static_pads(x, params)
    if pads is not None:
        from .pad import pad

        return [pad(gys[0], pads)] + nones
    return [_scatter_back(x, params, gys[0])] + nones


def _static_pads(x: Tensor, params: Sequence[Any]) -> list[int] | None:
    """Pad widths [begins..., ends...] putting g back in place, when they are known."""
    starts, ends, axes, steps = (list(params) + [None, None])[:4]
    if x.shape is None or starts.type.known is None or ends.type.known is None:
        return None
    if steps is not None and (steps.type.known is None or any(k != 1 for k in steps.type.known)):
        return None
    rank = len(x.shape)
    ax = _slice_axes(None if axes is None else axes.type, len(starts.type.known), rank)
    if ax is None:
        return None
    pads = [0] * (2 * rank)
    for a, s, e in zip(ax, starts.type.known, ends.type.known):
        d = x.shape[a]
        if isinstance(d, int) and isinstance(s, int) and isinstance(e, int):
            s, e = slice_bounds(d, s, e, 1)
            pads[a], pads[rank + a] = s, d - max(s, e)
        elif not (isinstance(s, int) and isinstance(e, int) and is_full_range(s, e, 1)):
            return None
    return pads


def _scatter_back(x: Tensor, params: list, g: Tensor) -> Tensor:
    """Scatters g, flattened, to the flat positions that the slice picked from x."""
    from .scatter import scatter_add
    from .shape import constant_of_shape, reshape, shape, shape_of

    b = x.b
    numel = None if x.shape is None else dim_prod(x.shape)
    size = b.const(np.asarray([numel], np.int64)) if isinstance(numel, int) else \
        shape(reshape(x, [-1]))
    zero, one = b.const(np.asarray(0, np.int64)), b.const(np.asarray(1, np.int64))
    grid = reshape(arange(zero, reshape(size, []), one), shape_of(x))
    picked = reshape(b.apply1("slice", [grid] + params), [-1])
    flat = scatter_add(constant_of_shape(size, 0, x.dtype), picked, reshape(g, [-1]), 0)
    return reshape(flat, shape_of(x))


register(OpDef("slice", _slice_infer, (3, 5), kernel=_slice_kernel, lower=_slice_lower,
               vjp=_slice_vjp, traits={"shape"},
               doc="ONNX Slice: x[starts:ends:steps] on the given axes."))


def _index_vector(b: Any, v: Any, like: Tensor | None) -> Tensor | None:
    if v is None or isinstance(v, Tensor):
        return v
    dt = np.int64 if like is None else like.dtype.np
    return b.const(np.asarray(v, dt).reshape(-1))


def slice_(x: Tensor, starts: Tensor | Sequence[int] | int, ends: Tensor | Sequence[int] | int,
           axes: Tensor | Sequence[int] | int | None = None,
           steps: Tensor | Sequence[int] | int | None = None) -> Tensor:
    """ONNX Slice: ``x[starts[i]:ends[i]:steps[i]]`` on each of ``axes`` (default: the first
    len(starts) axes). Each argument is an int vector tensor, or ints made into a constant."""
    given = [starts, ends, axes, steps]
    like = next((v for v in given if isinstance(v, Tensor)), None)
    ins = [x] + [_index_vector(x.b, v, like) for v in given]
    while ins[-1] is None:
        ins.pop()
    return x.b.apply1("slice", ins)


# -- range -------------------------------------------------------------------------------------


def _scalar(t: TensorType) -> Any:
    return t.known[0] if t.known is not None and len(t.known) == 1 else None


def _range_infer(types: list, attrs: dict) -> list[TensorType]:
    for name, t in zip(("start", "limit", "delta"), types):
        if t.shape is not None and t.shape != ():
            raise ShapeError(f"range's {name} must be a scalar, got {shape_str(t.shape)}")
    if len({t.dtype for t in types}) > 1:
        raise DTypeError(f"range's start, limit and delta differ in dtype: "
                         f"{[t.dtype.name for t in types]}")
    s, lim, d = (_scalar(t) for t in types)
    n: Dim = None
    known = None
    if all(isinstance(v, int) for v in (s, lim, d)):
        if d == 0:
            raise ShapeError("range's delta is 0")
        n = max(0, -((s - lim) // d))
        known = tuple(range(s, lim, d)) if n <= 64 and types[0].dtype == DType.int64 else None
    elif s == 0 and d == 1:
        n = lim
    return [TensorType(types[0].dtype, (n,), known)]


def _range_kernel(start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> np.ndarray:
    if delta == 0:
        raise ValueError("range's delta is 0")
    if start.dtype.kind == "i":
        s, lim, d = int(start), int(limit), int(delta)
        n = max(0, -((s - lim) // d))
    else:
        n = max(0, int(np.ceil((limit - start) / delta)))  # ONNX's count
    return (start + delta * np.arange(n, dtype=start.dtype)).astype(start.dtype)


register(OpDef("range", _range_infer, (3, 3), kernel=_range_kernel,
               lower=lambda ctx, n: ctx.emit("Range", n.inputs, n.outputs), vjp=no_grad,
               traits={"nondiff"}, doc="ONNX Range: start, start + delta, ... before limit."))


def arange(start: Tensor | int, limit: Tensor | int, delta: Tensor | int = 1) -> Tensor:
    """ONNX Range of scalars: ``[start, start + delta, ...)`` up to ``limit`` (exclusive)."""
    like = next(v for v in (start, limit, delta) if isinstance(v, Tensor))
    ins = [like.b.lift(v, like) for v in (start, limit, delta)]
    return like.b.apply1("range", ins)
