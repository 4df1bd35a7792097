"""Reductions: reduce_sum, reduce_mean, reduce_max over axes, with or without kept dims."""
from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.registry import Call, OpDef, register
from ..core.types import TensorType, dim_prod
from .common import WIDEN_NONE, WIDEN_ORDERED, WIDEN_WRAPPING, norm_axes
from .elementwise import cast
from .shape import dim_size, expand_as, unsqueeze

_ATTRS = {"axes": None, "keepdims": True}


def _reduce_infer(types: list, attrs: dict) -> list[TensorType]:
    t = types[0]
    if t.shape is None:
        return [TensorType(t.dtype, None)]
    axes = norm_axes(attrs["axes"], t.rank)
    axes = tuple(range(t.rank)) if axes is None else axes
    if attrs["keepdims"]:
        shape = tuple(1 if i in axes else d for i, d in enumerate(t.shape))
    else:
        shape = tuple(d for i, d in enumerate(t.shape) if i not in axes)
    return [TensorType(t.dtype, shape)]


def _kernel(fn):
    def kernel(x: np.ndarray, *, axes: Any, keepdims: bool) -> np.ndarray:
        ax = None if axes is None else tuple(axes)
        return np.asarray(fn(x, axis=ax, keepdims=bool(keepdims)))
    return kernel


def fast_mean(x: np.ndarray, axis: tuple[int, ...] | None = None,
          keepdims: bool = False) -> np.ndarray:
    """np.mean for floats without its Python-level wrapper (which costs more than the sum on
    small arrays): the sum, float16 accumulated in float32 as np.mean does, over the count."""
    count = x.size if axis is None else math.prod([x.shape[a] for a in axis])
    if x.dtype.kind != "f" or count == 0:
        return np.mean(x, axis=axis, keepdims=keepdims)
    if x.dtype == np.float16:
        total = np.add.reduce(x, axis=axis, keepdims=keepdims, dtype=np.float32)
        return np.asarray(total / np.float32(count), np.float16)
    total = np.add.reduce(x, axis=axis, keepdims=keepdims)
    return np.true_divide(total, x.dtype.type(count), out=total if total.ndim else None)


def _lower(onnx_type: str, axes_input_since: int):
    def lower(ctx: Any, node: Any) -> None:
        axes, keep = node.attrs["axes"], int(bool(node.attrs["keepdims"]))
        if axes is None:
            ctx.emit(onnx_type, node.inputs, node.outputs, keepdims=keep)
        elif ctx.opset >= axes_input_since:
            ax = ctx.const(np.asarray(axes, np.int64))
            ctx.emit(onnx_type, [node.inputs[0], ax], node.outputs, keepdims=keep)
        else:
            ctx.emit(onnx_type, node.inputs, node.outputs, axes=list(axes), keepdims=keep)
    return lower


def _axes(c: Call) -> tuple[int, ...]:
    rank = c.inputs[0].type.rank
    axes = norm_axes(c.attrs["axes"], rank)
    return tuple(range(rank)) if axes is None else axes


def _expand_back(g: Tensor, c: Call) -> Tensor:
    """The cotangent of a reduction broadcast back to the input's shape."""
    if not c.attrs["keepdims"] and _axes(c):
        g = unsqueeze(g, _axes(c))
    return expand_as(g, c.inputs[0])


def reduced_count(x: Tensor, axes: Sequence[int]) -> Tensor:
    """The number of elements reduced over ``axes``, as a scalar of x's dtype."""
    static = dim_prod([x.shape[a] for a in axes])
    if isinstance(static, int):
        return x.b.const(np.asarray(static, x.dtype.np))
    n = None
    for a in axes:  # the symbolic dims' sizes, then the static ones' product once
        d = x.shape[a]
        if not isinstance(d, int):
            s = cast(dim_size(x, a), x.dtype)
            n = s if n is None else n * s
    fixed = int(np.prod([x.shape[a] for a in axes if isinstance(x.shape[a], int)]))
    return n if fixed == 1 else n * x.b.const(np.asarray(fixed, x.dtype.np))


def _sum_vjp(b, c: Call, gys):
    return [_expand_back(gys[0], c)]


def _mean_vjp(b, c: Call, gys):
    return [_expand_back(gys[0], c) / reduced_count(c.inputs[0], _axes(c))]


def _max_vjp(b, c: Call, gys):
    """The gradient is shared equally among the tied maxima (as torch.amax does)."""
    x, y = c.inputs[0], c.outputs[0]
    keep = dict(c.attrs, keepdims=True)
    y_kept = y if c.attrs["keepdims"] else b.apply1("reduce_max", [x], **keep)
    mask = cast(x.eq(y_kept), x.dtype)
    ties = b.apply1("reduce_sum", [mask], **keep)
    g = _expand_back(gys[0], c)
    return [g * mask / ties]


def _max_kernel(x: np.ndarray, *, axes: Any, keepdims: bool) -> np.ndarray:
    """np.maximum.reduce; over an empty set, ONNX's identity: -inf, the least int, or False."""
    ax = None if axes is None else tuple(axes)
    if x.size:
        return np.asarray(np.maximum.reduce(x, axis=ax, keepdims=bool(keepdims)))
    if x.dtype.kind == "f":
        low: Any = -np.inf
    elif x.dtype.kind == "b":
        low = False
    else:
        low = np.iinfo(x.dtype).min
    return np.asarray(np.maximum.reduce(x, axis=ax, keepdims=bool(keepdims), initial=low))


def _sum(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """np.add.reduce in x's own dtype (numpy would widen ints narrower than int64)."""
    return np.add.reduce(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


def _never_empty(t: TensorType) -> bool:
    """Whether t has no dim that is 0 or unknown (np.maximum.reduce has no value for an empty
    set; reduce_max's own kernel gives ONNX's -inf there). A symbolic dim counts as nonzero."""
    return t.shape is not None and all(d is not None and d != 0 for d in t.shape)


def _inline(ufunc: np.ufunc, any_size: bool) -> Callable[..., bool]:
    """In a compiled plan, a reduction to rank >= 1: the ufunc's reduce itself, no wrapper
    (``any_size``: right on empty inputs too)."""
    def inline(w: Any, n: Any, args: list, target: str, donated: list) -> bool:
        x = n.inputs[0].type
        if not n.outputs[0].type.rank or not (any_size or _never_empty(x)):
            return False
        axes = n.attrs["axes"]
        fn = partial(ufunc.reduce, axis=None if axes is None else tuple(axes),
                     keepdims=bool(n.attrs["keepdims"]), dtype=x.dtype.np)  # narrow ints stay
        w.emit(n, f"{target} = {w.bind('k', fn)}({args[0]})")
        return True

    return inline


register(OpDef("reduce_sum", _reduce_infer, (1, 1), kernel=_kernel(_sum),
               inline=_inline(np.add, any_size=True),
               lower=_lower("ReduceSum", 13), vjp=_sum_vjp, attrs=dict(_ATTRS), fresh=True,
               widen=WIDEN_WRAPPING))
register(OpDef("reduce_mean", _reduce_infer, (1, 1), kernel=_kernel(fast_mean),
               lower=_lower("ReduceMean", 18), vjp=_mean_vjp, attrs=dict(_ATTRS), fresh=True,
               widen=WIDEN_NONE))
register(OpDef("reduce_max", _reduce_infer, (1, 1), kernel=_max_kernel,
               inline=_inline(np.maximum, any_size=False),
               lower=_lower("ReduceMax", 18), vjp=_max_vjp, attrs=dict(_ATTRS), fresh=True,
               widen=WIDEN_ORDERED))


def _axes_attr(axes: int | Sequence[int] | None) -> tuple[int, ...] | None:
    return (axes,) if isinstance(axes, int) else (None if axes is None else tuple(axes))


def reduce_sum(x: Tensor, axes: int | Sequence[int] | None = None,
               keepdims: bool = False) -> Tensor:
    """Sum over ``axes`` (all when None)."""
    return x.b.apply1("reduce_sum", [x], axes=_axes_attr(axes), keepdims=keepdims)


def reduce_mean(x: Tensor, axes: int | Sequence[int] | None = None,
                keepdims: bool = False) -> Tensor:
    """Mean over ``axes`` (all when None)."""
    return x.b.apply1("reduce_mean", [x], axes=_axes_attr(axes), keepdims=keepdims)


def reduce_max(x: Tensor, axes: int | Sequence[int] | None = None,
               keepdims: bool = False) -> Tensor:
    """Maximum over ``axes`` (all when None)."""
    return x.b.apply1("reduce_max", [x], axes=_axes_attr(axes), keepdims=keepdims)
