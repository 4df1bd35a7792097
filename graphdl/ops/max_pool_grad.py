"""The gradient of max pooling (section 3.3): the output gradient routed to each window's
first maximum, given the flat indices ``max_pool`` returns beside its maxima (pool.py).

The NumPy kernel adds gy at the indices (windows may overlap). The ONNX lowering scatters
with ScatterElements(add); when the windows tile the input (the ``tiling`` attribute: strides
= kernel, no pads or dilation) it instead compares each kernel offset's slice of x with the
window maxima, needing neither MaxPool's Indices output nor ScatterElements, both slow in
onnxruntime.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import DTypeError, ShapeError
from ..core.registry import Call, OpDef, register
from ..core.types import DType, TensorType, dims_equal, shape_str
from .im2col_lowering import ints
from .gather import gather
from .scatter_onehot import emit_scatter_add
from .shape import reshape


def _max_pool_grad_infer(types: list, attrs: dict) -> list[TensorType]:
    gy, idx, x = types
    if idx.dtype != DType.int64:
        raise DTypeError(f"max_pool_grad: indices must be int64, got {idx.dtype.name}")
    if gy.dtype != x.dtype:
        raise DTypeError(f"max_pool_grad: gradient {gy.dtype.name} and input {x.dtype.name} "
                         "differ")
    if gy.shape is not None and idx.shape is not None and (
            len(gy.shape) != len(idx.shape)
            or any(dims_equal(a, b) is False for a, b in zip(gy.shape, idx.shape))):
        raise ShapeError(f"max_pool_grad: gradient {shape_str(gy.shape)} and indices "
                         f"{shape_str(idx.shape)} differ")
    return [TensorType(x.dtype, x.shape)]


def _max_pool_grad_kernel(gy: np.ndarray, idx: np.ndarray, x: np.ndarray,
                          tiling: Any = None) -> np.ndarray:
    """gy summed into a zero tensor like x at the flat indices (windows may overlap)."""
    out = np.bincount(idx.ravel(), weights=gy.ravel(), minlength=x.size)
    return out.reshape(x.shape).astype(x.dtype, copy=False)


def _max_pool_grad_lower(ctx: Any, node: Any) -> None:
    """-> ScatterElements(add) of the flat gradient into zeros of x's size, reshaped; or, when
    the windows tile x, by comparing each kernel offset's slice with the window maxima."""
    gy, idx, x = node.inputs
    if _tiles_statically(node):
        _tiled_max_pool_grad_lower(ctx, node)
        return
    shp = ctx.emit("Shape", [x], 1)[0]
    zero = np.zeros(1, x.type.dtype.np)
    zeros = ctx.emit("ConstantOfShape", [shp], 1, value=zero)[0]
    flat = ctx.const(np.array([-1], np.int64))
    zeros = ctx.emit("Reshape", [zeros, flat], 1)[0]
    idx_f = ctx.emit("Reshape", [idx, flat], 1)[0]
    gy_f = ctx.emit("Reshape", [gy, flat], 1)[0]
    out = ctx.fresh("scatter_add")
    emit_scatter_add(ctx, zeros, idx_f, gy_f, 0, out, 1, x.type.dtype.onnx)
    ctx.emit("Reshape", [out, shp], node.outputs)


def _tiles_statically(node: Any) -> bool:
    shape = node.inputs[2].type.shape
    return bool(node.attrs["tiling"]) and shape is not None and all(
        isinstance(n, int) for n in shape[2:])


def _tiled_max_pool_grad_lower(ctx: Any, node: Any) -> None:
    """Windows that tile x: offset j of each window gets g where its value equals the window
    max and no earlier offset's does (the first maximum, as the indices say), as a multiply
    by that mask. x is viewed as [N, C, out1, k1, out2, k2, ...] and split into one piece per
    offset; the gradient pieces are concatenated back. Needs neither MaxPool's Indices output
    nor ScatterElements, both slow in onnxruntime (with Indices MaxPool takes ~15x as long);
    differs from the scatter only where g is not finite (0 * inf)."""
    gy, _, x = node.inputs
    kernel, sizes = tuple(node.attrs["tiling"]), tuple(x.type.shape[2:])
    r, outs = len(kernel), tuple(n // k for n, k in zip(sizes, kernel))
    tiled = [o * k for o, k in zip(outs, kernel)]
    short = [n - t for n, t in zip(sizes, tiled)]
    xs = x.name
    if any(short):
        xs = ctx.emit("Slice", [xs, ints(ctx, [0] * r), ints(ctx, tiled),
                                ints(ctx, range(2, 2 + r))])[0]
    view = [0, 0] + [d for o, k in zip(outs, kernel) for d in (o, k)]
    taps = _split_offsets(ctx, ctx.emit("Reshape", [xs, ints(ctx, view)])[0], kernel)
    g = ctx.emit("Reshape", [gy.name, ints(ctx, [0, 0] + [d for o in outs for d in (o, 1)])])[0]
    top = ctx.emit("Max", taps)[0] if len(taps) > 1 else taps[0]
    seen, pieces = None, []
    for tap in taps:
        hit = ctx.emit("Equal", [tap, top])[0]
        first = hit if seen is None else ctx.emit("And", [hit, ctx.emit("Not", [seen])[0]])[0]
        seen = hit if seen is None else ctx.emit("Or", [seen, hit])[0]
        mask = ctx.emit("Cast", [first], to=x.type.dtype.onnx)[0]
        pieces.append(ctx.emit("Mul", [g, mask])[0])
    joined = _join_offsets(ctx, pieces, kernel)
    out = node.outputs if not any(short) else 1
    grad = ctx.emit("Reshape", [joined, ints(ctx, [0, 0, *tiled])], out)[0]
    if any(short):
        ctx.emit("Pad", [grad, ints(ctx, [0] * (2 + r) + [0, 0] + short)], node.outputs)


def _split_offsets(ctx: Any, view: str, kernel: tuple[int, ...]) -> list[str]:
    """[N, C, o1, k1, o2, k2, ...] -> one [N, C, o1, 1, o2, 1, ...] per offset (row-major)."""
    pieces = [view]
    for i, k in enumerate(kernel):
        if k > 1:
            pieces = [p for whole in pieces for p in
                      ctx.emit("Split", [whole, ints(ctx, [1] * k)], k, axis=3 + 2 * i)]
    return pieces


def _join_offsets(ctx: Any, pieces: list[str], kernel: tuple[int, ...]) -> str:
    """The inverse of _split_offsets: concatenate the innermost kernel axis first."""
    for i in reversed(range(len(kernel))):
        k = kernel[i]
        if k > 1:
            pieces = [ctx.emit("Concat", pieces[j:j + k], axis=3 + 2 * i)[0]
                      for j in range(0, len(pieces), k)]
    return pieces[0]


def _max_pool_grad_vjp(b, c: Call, gys):
    """Linear in gy: its adjoint gathers g at the indices."""
    return [gather(reshape(gys[0], [-1]), c.inputs[1], 0), None, None]


register(OpDef("max_pool_grad", _max_pool_grad_infer, (3, 3), kernel=_max_pool_grad_kernel,
               lower=_max_pool_grad_lower, vjp=_max_pool_grad_vjp, attrs={"tiling": None},
               lower_reads=lambda n: (0, 2) if _tiles_statically(n) else (0, 1, 2),
               doc="gy [N, C, out...] added at the flat indices into zeros shaped like x."))


def max_pool_grad(gy: Tensor, indices: Tensor, x: Tensor,
                  tiling: Sequence[int] | None = None) -> Tensor:
    """Zeros shaped like x with gy added at ``indices`` (max pooling's input gradient).
    ``tiling``: the kernel when the pool's windows tile x (strides = kernel, no pads), which
    lets the ONNX export route g without the indices."""
    return gy.b.apply1("max_pool_grad", [gy, indices, x],
                       tiling=None if tiling is None else tuple(int(k) for k in tiling))
