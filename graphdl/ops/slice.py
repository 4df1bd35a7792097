"""Slicing (ONNX Slice), concat (ONNX Concat, whose gradient is slices) and index ranges
(ONNX Range).

``slice`` takes its starts, ends, axes and steps as int vectors, exactly like ONNX, so imported
models (PyTorch slices shape vectors) work. When their values are known at build time the output
dims are exact; a symbolic dim keeps its symbol under a full range (``0:INT64_MAX``,
``-1:-INT64_MAX:-1``), and slicing a known shape vector gives a known vector.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import DTypeError, GradError, GraphError, ShapeError
from ..core.registry import REQUIRED, Call, OpDef, no_grad, onnx_op, register
from ..core.types import DType, Dim, TensorType, dim_prod, dims_equal, shape_str
from .common import norm_axis
from .pad import pad
from .scatter import scatter_add
from .shape import constant_of_shape, reshape, shape, shape_of

INT64_MAX = 2**63 - 1
#: an end at least this far out (either way) reaches past any real dim: "to the end"
FAR = 2**62
#: ends that onnxruntime's kernel reads as numpy's None whatever the step's sign, unlike the
#: spec (and ONNX shape inference), which clamps them to the last index: x[0:INT64_MAX:-1] is
#: x[0:0:-1] (empty) by the spec but x[0::-1] in onnxruntime. graphdl follows the spec.
NO_END = (INT64_MAX, 2**31 - 1)
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
    lens = [(n, len(t.known) if t.known is not None else t.shape[0] if t.shape else None)
            for n, t in present]
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
    """-> ONNX Slice. Where a step may be negative, ends in NO_END become one less, which the
    spec reads alike and onnxruntime's kernel then reads as the spec does."""
    ins: list[Any] = list(node.inputs)
    while ins[-1] is None:
        ins.pop()
    ends, steps = ins[2].type.known, ins[4].type.known if len(ins) > 4 else (1,)
    may_go_back = steps is None or any(not isinstance(k, int) or k < 0 for k in steps)
    if may_go_back and ends is not None and any(e in NO_END for e in ends):
        fixed = [e - 1 if e in NO_END else e for e in ends]
        if all(isinstance(e, int) for e in fixed):
            ins[2] = ctx.const(np.asarray(fixed, ins[2].type.dtype.np))
    ctx.emit("Slice", ins, node.outputs)


def _slice_vjp(b, c: Call, gys):
    """g goes back to the sliced positions, zeros elsewhere. With bounds known at build time
    that is the same slice when every sliced axis is kept whole (a reversal is its own
    adjoint), or a Pad when every step is 1; otherwise g is scattered to the positions of an
    index grid sliced alike, which serves any steps, symbolic dims and run-time bounds."""
    x, params, g = c.inputs[0], list(c.inputs[1:]), gys[0]
    nones = [None] * len(params)
    if not x.dtype.is_float:
        return [None] + nones
    plan = _static_plan(x, params)
    if plan is not None and all(_whole(d, s, e, k) for d, s, e, k in plan.values()):
        return [b.apply1("slice", [g] + params)] + nones
    if plan is not None and all(k == 1 for _, _, _, k in plan.values()):
        pads = _pads(x.shape, plan)
        if pads is not None:
            return [pad(g, pads)] + nones
    return [_scatter_back(x, params, g)] + nones


def _static_plan(x: Tensor, params: Sequence[Any]) -> dict[int, tuple] | None:
    """{axis: (dim, start, end, step)} when the sliced axes and their bounds are known ints."""
    starts, ends, axes, steps = (list(params) + [None, None])[:4]
    vals = [starts.type.known, ends.type.known]
    vals.append((1,) * len(vals[0] or ()) if steps is None else steps.type.known)
    if x.shape is None or any(v is None or not all(isinstance(i, int) for i in v) for v in vals):
        return None
    ax = _slice_axes(None if axes is None else axes.type, len(vals[0]), len(x.shape))
    if ax is None:
        return None
    return {a: (x.shape[a], s, e, k) for a, s, e, k in zip(ax, *vals)}


def _whole(d: Dim, s: int, e: int, k: int) -> bool:
    """Does the slice keep every element of an axis of size d (in order or reversed)?"""
    if not isinstance(d, int):
        return is_full_range(s, e, k)
    return abs(k) == 1 and slice_bounds(d, s, e, k) == ((0, d) if k == 1 else (d - 1, -1))


def _pads(shape: tuple, plan: dict[int, tuple]) -> list[int] | None:
    """Pad widths [begins..., ends...] putting a unit-step slice's g back in place."""
    rank = len(shape)
    pads = [0] * (2 * rank)
    for a, (d, s, e, _) in plan.items():
        if isinstance(d, int):
            s, e = slice_bounds(d, s, e, 1)
            pads[a], pads[rank + a] = s, d - max(s, e)
        elif not is_full_range(s, e, 1):
            return None
    return pads


def _scatter_back(x: Tensor, params: list, g: Tensor) -> Tensor:
    """Scatters g, flattened, to the flat positions that the slice picked from x."""
    b = x.b
    numel = None if x.shape is None else dim_prod(x.shape)
    size = b.const(np.asarray([numel], np.int64)) if isinstance(numel, int) else \
        shape(reshape(x, [-1]))
    zero, one = b.const(np.asarray(0, np.int64)), b.const(np.asarray(1, np.int64))
    grid = reshape(arange(zero, reshape(size, []), one), shape_of(x), allowzero=True)
    picked = reshape(b.apply1("slice", [grid] + params), [-1])
    flat = scatter_add(constant_of_shape(size, 0, x.dtype), picked, reshape(g, [-1]), 0)
    return reshape(flat, shape_of(x), allowzero=True)


register(OpDef("slice", _slice_infer, (3, 5), kernel=_slice_kernel, lower=_slice_lower,
               vjp=_slice_vjp, traits={"shape", "moves_data"},
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


# -- concat ------------------------------------------------------------------------------------


def _concat_infer(types: list, attrs: dict) -> list[TensorType]:
    dts = {t.dtype for t in types}
    if len(dts) != 1:
        raise DTypeError(f"concat inputs have different dtypes {sorted(d.name for d in dts)}")
    shapes = [t.shape for t in types]
    if any(s is None for s in shapes):
        return [TensorType(types[0].dtype, None)]
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise ShapeError(f"concat inputs have different ranks: "
                         f"{', '.join(shape_str(s) for s in shapes)}")
    axis = norm_axis(attrs["axis"], rank, "concat axis")
    out = list(shapes[0])
    for s in shapes[1:]:
        for i, (a, c) in enumerate(zip(out, s)):
            if i != axis and dims_equal(a, c) is False:
                raise ShapeError(f"concat: inputs differ on axis {i}: "
                                 f"{', '.join(shape_str(s) for s in shapes)}")
    sizes = [s[axis] for s in shapes]
    out[axis] = sum(sizes) if all(isinstance(d, int) for d in sizes) else None
    known = None
    if rank == 1 and all(t.known is not None for t in types):
        known = tuple(d for t in types for d in t.known)
        out[axis] = len(known)
    return [TensorType(types[0].dtype, tuple(out), known)]


def _concat_vjp(b, c: Call, gys):
    """Each input's gradient is its slice of g along the axis (offsets may be symbolic)."""
    g, axis = gys[0], c.attrs["axis"]
    rank = g.type.rank
    if rank is None or any(x.shape is None for x in c.inputs):
        raise GradError(f"concat at {c.node.loc}: the gradient needs inputs of known rank")
    axis = axis % rank
    out, start = [], 0  # an int offset while the sizes are static, else an int64 vector
    for x in c.inputs:
        d = x.shape[axis]
        if isinstance(start, int) and isinstance(d, int):
            end: Any = start + d
        else:
            if isinstance(start, int):
                start = b.const(np.asarray([start], np.int64))
            end = start + (b.const(np.asarray([d], np.int64)) if isinstance(d, int)
                           else shape(x, axis, axis + 1))
        out.append(slice_(g, start, end, axes=[axis]))
        start = end
    return out


register(OpDef("concat", _concat_infer, (1, 1 << 20),
               kernel=lambda *xs, axis: np.concatenate(xs, axis=axis),
               lower=onnx_op("Concat"), vjp=_concat_vjp, attrs={"axis": REQUIRED},
               traits={"shape", "moves_data"}))


def concat(xs: Sequence[Tensor], axis: int) -> Tensor:
    """ONNX Concat of ``xs`` along ``axis``; concatenated known vectors stay known."""
    return xs[0].b.apply1("concat", list(xs), axis=axis)


# -- range -------------------------------------------------------------------------------------


#: ONNX Range's types; onnxruntime has no float16 kernel, so float16 exports through float32
_RANGE_DTYPES = (DType.int64, DType.int32, DType.int16, DType.float32, DType.float64,
                 DType.float16)


def _scalar(t: TensorType) -> Any:
    return t.known[0] if t.known is not None and len(t.known) == 1 else None


def _range_infer(types: list, attrs: dict) -> list[TensorType]:
    for name, t in zip(("start", "limit", "delta"), types):
        if t.shape is not None and t.shape != ():
            raise ShapeError(f"range's {name} must be a scalar, got {shape_str(t.shape)}")
    if len({t.dtype for t in types}) > 1:
        raise DTypeError(f"range's start, limit and delta differ in dtype: "
                         f"{[t.dtype.name for t in types]}")
    if types[0].dtype not in _RANGE_DTYPES:
        raise DTypeError(f"range takes {[d.name for d in _RANGE_DTYPES]}, "
                         f"not {types[0].dtype.name}")
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


def _range_len(start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> tuple[int]:
    """ONNX's element count of Range, as a shape."""
    if delta == 0:
        raise ValueError("range's delta is 0")
    if start.dtype.kind == "i":
        s, lim, d = int(start), int(limit), int(delta)
        return (max(0, -((s - lim) // d)),)
    return (max(0, int(np.ceil((limit - start) / delta))),)


def _range_kernel(start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> np.ndarray:
    (n,) = _range_len(start, limit, delta)
    return (start + delta * np.arange(n, dtype=start.dtype)).astype(start.dtype)


def _range_lower(ctx: Any, node: Any) -> None:
    """-> Range; float16 as Cast(float32) -> Range -> Cast(float16) (no onnxruntime kernel)."""
    if node.outputs[0].type.dtype != DType.float16:
        ctx.emit("Range", node.inputs, node.outputs)
        return
    wide = [ctx.emit("Cast", [v], 1, to=DType.float32.onnx)[0] for v in node.inputs]
    (out,) = ctx.emit("Range", wide, 1)
    ctx.emit("Cast", [out], node.outputs, to=DType.float16.onnx)


register(OpDef("range", _range_infer, (3, 3), kernel=_range_kernel,
               lower=_range_lower, vjp=no_grad,
               traits={"nondiff"}, out_shape=_range_len,
               doc="ONNX Range: start, start + delta, ... before limit."))


def arange(start: Tensor | int, limit: Tensor | int, delta: Tensor | int = 1) -> Tensor:
    """ONNX Range of scalars: ``[start, start + delta, ...)`` up to ``limit`` (exclusive)."""
    like = next((v for v in (start, limit, delta) if isinstance(v, Tensor)), None)
    if like is None:
        raise GraphError("arange needs at least one Tensor argument (its graph and dtype); "
                         "use GraphBuilder.const for a fixed range")
    ins = [like.b.lift(v, like) for v in (start, limit, delta)]
    return like.b.apply1("range", ins)
