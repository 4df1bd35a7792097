"""Pooling: max and average pooling over windows, as ONNX MaxPool and
AveragePool define them (kernel, strides, pads or auto_pad, dilations, ceil_mode,
count_include_pad), and global average / max pooling.

``max_pool`` has two outputs, as ONNX MaxPool: the maxima and the flat index into x of each
window's first maximum (ties go to the first, as in PyTorch and ONNX Runtime). Its gradient
routes the output gradient to those indices (``max_pool_grad``, in max_pool_grad.py). Average
pooling is linear: its gradient is a ``conv_transpose`` of the output gradient divided by each
window's count.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import REQUIRED, Call, OpDef, register
from ..core.types import DType, TensorType, shape_str
from .common import WIDEN_NONE, need_float
from .conv import conv_transpose
from .im2col_lowering import needs_fallback, static_spatial, window, window_slices
from .max_pool_grad import max_pool_grad
from .reduce import reduce_max, reduce_mean
from .shape import reshape, shape_of
from .window import (as_pads, as_tuple, fit_transpose, out_dims, resolve_pads, spatial,
                     static_sizes, windows)

_POOL_ATTRS = {"kernel_shape": REQUIRED, "strides": None, "pads": None, "dilations": None,
               "ceil_mode": 0, "auto_pad": "NOTSET"}


def _pool_infer(op: str, types: list, attrs: dict) -> tuple[Any, ...]:
    x = types[0]
    if op != "max_pool":
        need_float(x, f"{op} input")
    kernel = tuple(attrs["kernel_shape"])
    if x.shape is None or len(x.shape) != len(kernel) + 2:
        raise ShapeError(f"{op}: input must be [N, C, spatial...] with {len(kernel)} spatial "
                         f"axes for kernel {list(kernel)}, got {shape_str(x.shape)}")
    pads = resolve_pads(op, x.shape[2:], kernel, attrs)
    if pads is not None and any(p >= k for p, k in zip(pads, kernel * 2)):
        raise ShapeError(f"{op}: pads {list(pads)} must be smaller than the kernel "
                         f"{list(kernel)}")
    outs = out_dims(op, x.shape[2:], kernel, attrs, bool(attrs["ceil_mode"]))
    return tuple(x.shape[:2]) + outs


def _geometry(x: np.ndarray, attrs: dict, outs: Sequence[int] | None = None):
    """(kernel, strides, dilations, pads, extra end padding for ceil_mode, output sizes)."""
    kernel = tuple(attrs["kernel_shape"])
    r = len(kernel)
    strides, dil, _ = spatial(attrs, r)
    pads = resolve_pads("pool", x.shape[2:], kernel, attrs)
    if outs is None:
        outs = out_dims("pool", x.shape[2:], kernel, attrs, bool(attrs["ceil_mode"]))
    extra = tuple(max(0, s * (o - 1) + d * (k - 1) + 1 - (n + pads[i] + pads[r + i]))
                  for i, (n, k, s, d, o) in enumerate(zip(x.shape[2:], kernel, strides, dil,
                                                          outs)))
    return kernel, strides, dil, pads, extra, outs


def _lower_attrs(node: Any) -> dict:
    a = dict(node.attrs)
    r = len(a["kernel_shape"])
    strides, dil, pads = spatial(a, r)
    auto = a.pop("auto_pad")
    a.update(strides=strides, pads=pads if auto == "NOTSET" else None,
             auto_pad=None if auto == "NOTSET" else auto)
    a["dilations"] = dil if any(d != 1 for d in dil) else None  # AveragePool: opset >= 19
    return a


# -- max pooling -------------------------------------------------------------------------------


def _max_pool_infer(types: list, attrs: dict) -> list[TensorType]:
    shape = _pool_infer("max_pool", types, attrs)
    return [TensorType(types[0].dtype, shape), TensorType(DType.int64, shape)]


def _first_max(win: np.ndarray, kernel: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The max of each window [N, C, out..., k...] and the flat offset of its first maximum:
    one pass per kernel offset over the whole output (a strict > keeps the first of ties)."""
    offsets = list(np.ndindex(*kernel))
    y = np.array(win[(Ellipsis,) + offsets[0]])
    arg = np.zeros(y.shape, np.min_scalar_type(len(offsets)))
    for j, off in enumerate(offsets[1:], 1):
        v = win[(Ellipsis,) + off]
        arg = np.where(v > y, arg.dtype.type(j), arg)
        np.maximum(y, v, out=y)
    return y, arg


def _max_pool_kernel(x: np.ndarray, **attrs: Any) -> tuple[np.ndarray, np.ndarray]:
    """The maxima and their flat indices into x: over N, C, then the spatial axes in row-major
    order, or column-major with storage_order=1."""
    kernel, strides, dil, pads, extra, outs = _geometry(x, attrs)
    r, sizes = len(kernel), x.shape[2:]
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    y, arg = _first_max(windows(x, kernel, strides, dil, pads, low, extra), kernel)
    order = list(range(r))[::-1] if attrs["storage_order"] else list(range(r))
    step = {i: int(np.prod([sizes[j] for j in order[order.index(i) + 1:]])) for i in order}
    n, c = x.shape[:2]
    base = np.arange(n * c, dtype=np.int64).reshape((n, c) + (1,) * r) * int(np.prod(sizes))
    for i in range(r):  # each window's first element (possibly in the padding)
        start = np.arange(outs[i], dtype=np.int64) * strides[i] - pads[i]
        base = base + (start * step[i]).reshape((-1,) + (1,) * (r - 1 - i))
    table = np.array(list(np.ndindex(*kernel)), np.int64).reshape(-1, r)
    offset = table @ np.array([dil[i] * step[i] for i in range(r)], np.int64)
    return y, base + offset[arg]


def _max_pool_values(x: np.ndarray, **attrs: Any) -> np.ndarray:
    """The maxima alone (the engine's kernel when nothing reads the indices): one in-place
    maximum per kernel offset, a fraction of the cost of tracking where each maximum is."""
    kernel, strides, dil, pads, extra, _ = _geometry(x, attrs)
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    win = windows(x, kernel, strides, dil, pads, low, extra)
    offsets = list(np.ndindex(*kernel))
    y = np.array(win[(Ellipsis,) + offsets[0]])
    for off in offsets[1:]:
        np.maximum(y, win[(Ellipsis,) + off], out=y)
    return y


def _max_pool_lower(ctx: Any, node: Any) -> None:
    """MaxPool; its optional Indices output only when read (onnxruntime's MaxPool without
    Indices runs a much faster kernel)."""
    unread = node.outputs[1].name in getattr(ctx, "unread", ())
    outs = node.outputs[:1] if unread else node.outputs
    ctx.emit("MaxPool", node.inputs, outs, **_lower_attrs(node))


def _tiling(attrs: dict) -> tuple[int, ...] | None:
    """The kernel when the windows tile x without overlap or padding (strides = kernel, no
    pads or dilation, floor sizes), else None: then the gradient needs no indices."""
    kernel = tuple(attrs["kernel_shape"])
    strides, dil, pads = spatial(attrs, len(kernel))
    plain = attrs["auto_pad"] in ("NOTSET", "VALID") and not attrs["ceil_mode"]
    if plain and strides == kernel and set(dil) == {1} and not any(pads):
        return kernel
    return None


def _max_pool_vjp(b, c: Call, gys):
    """Routes g to the (row-major) indices of each window's first maximum."""
    x, idx = c.inputs[0], c.outputs[1]
    if gys[0] is None:
        return [None]
    if c.attrs["storage_order"]:
        idx = b.apply("max_pool", [x], **dict(c.attrs, storage_order=0))[1]
    return [max_pool_grad(gys[0], idx, x, tiling=_tiling(c.attrs))]


register(OpDef("max_pool", _max_pool_infer, (1, 1), kernel=_max_pool_kernel,
               lower=_max_pool_lower, vjp=_max_pool_vjp, kernel_first=_max_pool_values,
               fresh=True, widen=WIDEN_NONE,
               attrs={**_POOL_ATTRS, "storage_order": 0},
               doc="ONNX MaxPool with its Indices output (first maximum of each window)."))


def _pool_args(x: Tensor, kernel: int | Sequence[int], strides: Any, pads: Any,
               dilations: Any, ceil_mode: bool, auto_pad: str) -> dict:
    r = len(kernel) if not isinstance(kernel, int) else max((x.type.rank or 4) - 2, 1)
    k = as_tuple(kernel, r, "kernel_shape")
    p = as_pads(pads, r)
    return {"kernel_shape": k, "strides": as_tuple(k if strides is None else strides, r,
                                                 "strides"),
            "pads": p, "dilations": as_tuple(dilations, r, "dilations"),
            "ceil_mode": int(ceil_mode), "auto_pad": auto_pad}


def max_pool(x: Tensor, kernel: int | Sequence[int], strides: int | Sequence[int] | None = None,
             pads: int | Sequence[int] = 0, dilations: int | Sequence[int] = 1,
             ceil_mode: bool = False, auto_pad: str = "NOTSET") -> Tensor:
    """Max over each window (strides default to the kernel, as in PyTorch)."""
    return max_pool_with_indices(x, kernel, strides, pads, dilations, ceil_mode, auto_pad)[0]


def max_pool_with_indices(x: Tensor, kernel: int | Sequence[int],
                          strides: int | Sequence[int] | None = None,
                          pads: int | Sequence[int] = 0, dilations: int | Sequence[int] = 1,
                          ceil_mode: bool = False, auto_pad: str = "NOTSET"
                          ) -> tuple[Tensor, Tensor]:
    """(maxima, flat int64 indices into x of each window's first maximum)."""
    y, idx = x.b.apply("max_pool", [x], **_pool_args(x, kernel, strides, pads, dilations,
                                                      ceil_mode, auto_pad))
    return y, idx


# -- average pooling ---------------------------------------------------------------------------


def _avg_pool_infer(types: list, attrs: dict) -> list[TensorType]:
    return [TensorType(types[0].dtype, _pool_infer("avg_pool", types, attrs))]


def window_counts(sizes: Sequence[int], attrs: dict, outs: Sequence[int]) -> np.ndarray:
    """How many elements each window averages: those of x, plus the pads (not the ceil_mode
    overhang) with count_include_pad."""
    kernel = tuple(attrs["kernel_shape"])
    ones = np.ones((1, 1) + tuple(sizes))
    _, strides, dil, pads, extra, _ = _geometry(ones, attrs, outs)
    r = len(kernel)
    if attrs["count_include_pad"]:
        widths = [(0, 0), (0, 0)] + [(pads[i], pads[r + i]) for i in range(r)]
        ones = np.pad(ones, widths, constant_values=1.0)
        pads = (0,) * (2 * r)
    win = windows(ones, kernel, strides, dil, pads, 0.0, extra)
    return win.sum(axis=tuple(range(-r, 0)))[0, 0]


def _avg_pool_kernel(x: np.ndarray, **attrs: Any) -> np.ndarray:
    """The window sums, one in-place add per kernel offset over the whole output (a reduction
    over the strided window axes runs far slower), divided by the window counts."""
    kernel, strides, dil, pads, extra, outs = _geometry(x, attrs)
    win = windows(x, kernel, strides, dil, pads, 0.0, extra)
    offsets = list(np.ndindex(*kernel))
    total = np.array(win[(Ellipsis,) + offsets[0]])
    for off in offsets[1:]:
        total += win[(Ellipsis,) + off]
    if any(extra) or (any(pads) and not attrs["count_include_pad"]):
        counts = window_counts(x.shape[2:], attrs, outs).astype(x.dtype)
    else:  # every window holds the whole kernel
        counts = np.array(np.prod(kernel), x.dtype)
    total /= counts
    return total


def _avg_pool_fallback(ctx: Any, node: Any) -> None:
    """The window sums (one strided Slice per kernel offset, zeros in the padding) divided by
    the static window counts: AveragePool without its kernel."""
    x, a = node.inputs[0], node.attrs
    sizes = static_spatial("avg_pool", x)
    kernel = tuple(a["kernel_shape"])
    strides, dil, _ = spatial(a, len(kernel))
    pads = resolve_pads("avg_pool", sizes, kernel, a)
    outs = tuple(node.outputs[0].type.shape[2:])
    pieces = window_slices(ctx, x.name, sizes, window(kernel, strides, dil, pads, outs))
    total = ctx.emit("Sum", pieces)[0]
    counts = ctx.const(window_counts(sizes, a, outs).astype(x.type.dtype.np))
    ctx.emit("Div", [total, counts], node.outputs)


def _avg_pool_lower(ctx: Any, node: Any) -> None:
    """ONNX AveragePool, except in float64 (no onnxruntime kernel): window sums / counts."""
    if needs_fallback(node.inputs[0]):
        _avg_pool_fallback(ctx, node)
        return
    ctx.emit("AveragePool", node.inputs, node.outputs, **_lower_attrs(node))


def _avg_pool_vjp(b, c: Call, gys):
    """dx = S^T (g / counts), S the window sum: a conv_transpose with a kernel of ones over
    the channels folded into the batch."""
    x, g = c.inputs[0], gys[0]
    sizes = static_sizes(x, "avg_pool")
    kernel = tuple(c.attrs["kernel_shape"])
    r = len(kernel)
    strides, dil, _ = spatial(c.attrs, r)
    pads = resolve_pads("avg_pool", sizes, kernel, c.attrs)
    outs = tuple(g.shape[2:])
    counts = window_counts(sizes, c.attrs, outs).astype(x.dtype.np)
    pads, extra = fit_transpose(sizes, outs, kernel, strides, dil, pads)
    g1 = reshape(g, [-1, 1, *outs]) / b.const(counts)
    ones = b.const(np.ones((1, 1) + kernel, x.dtype.np))
    gx = conv_transpose(g1, ones, None, strides, pads, dil, 1, extra)
    return [reshape(gx, shape_of(x))]


register(OpDef("avg_pool", _avg_pool_infer, (1, 1), kernel=_avg_pool_kernel,
               lower=_avg_pool_lower, vjp=_avg_pool_vjp, fresh=True, widen=WIDEN_NONE,
               attrs={**_POOL_ATTRS, "count_include_pad": 0},
               doc="ONNX AveragePool: the mean over each window."))


def avg_pool(x: Tensor, kernel: int | Sequence[int], strides: int | Sequence[int] | None = None,
             pads: int | Sequence[int] = 0, dilations: int | Sequence[int] = 1,
             ceil_mode: bool = False, count_include_pad: bool = False,
             auto_pad: str = "NOTSET") -> Tensor:
    """Mean over each window (strides default to the kernel); pads count in the mean only
    with ``count_include_pad``, as in ONNX."""
    attrs = _pool_args(x, kernel, strides, pads, dilations, ceil_mode, auto_pad)
    return x.b.apply1("avg_pool", [x], count_include_pad=int(count_include_pad), **attrs)


# -- global pooling ----------------------------------------------------------------------------


def _global_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    need_float(x, "global pooling input")
    if x.shape is None or len(x.shape) < 3:
        raise ShapeError(f"global pooling: input must be [N, C, spatial...], got "
                         f"{shape_str(x.shape)}")
    return [TensorType(x.dtype, tuple(x.shape[:2]) + (1,) * (len(x.shape) - 2))]


def _global_decompose(reduce: str):
    def decompose(b, ins: list, attrs: dict) -> list[Tensor]:
        fn = reduce_mean if reduce == "mean" else reduce_max
        x = ins[0]
        return [fn(x, tuple(range(2, x.type.rank)), keepdims=True)]
    decompose.__doc__ = f"-> reduce_{reduce} over the spatial axes, keepdims"
    return decompose


register(OpDef("global_avg_pool", _global_infer, (1, 1), decompose=_global_decompose("mean"),
               traits={"composite"}, doc="ONNX GlobalAveragePool: the mean over each map."))
register(OpDef("global_max_pool", _global_infer, (1, 1), decompose=_global_decompose("max"),
               traits={"composite"}, doc="ONNX GlobalMaxPool: the max over each map."))


def global_avg_pool(x: Tensor) -> Tensor:
    """[N, C, S...] -> [N, C, 1...]: the mean of each channel's map."""
    return x.b.apply1("global_avg_pool", [x])


def global_max_pool(x: Tensor) -> Tensor:
    """[N, C, S...] -> [N, C, 1...]: the max of each channel's map."""
    return x.b.apply1("global_max_pool", [x])
