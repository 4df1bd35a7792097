"""Local response normalisation (ONNX LRN), as used by AlexNet, Inception v1 and ZFNet.

``y = x / (bias + alpha / size * S) ** beta`` where ``S[n, c]`` sums ``x[n, c'] ** 2`` over the
channels ``c - floor((size - 1) / 2) <= c' <= c + ceil((size - 1) / 2)`` (zeros past the ends).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import REQUIRED, Call, OpDef, register
from ..core.types import TensorType
from .common import need_float
from .im2col_lowering import needs_fallback
from .pad import pad
from .slice import slice_

BIG = np.iinfo(np.int64).max
MAX_SIZE = 1 << 16  # a window wider than this needs the channel count known to clamp it


def _window(size: int, channels: Any = None) -> tuple[int, int]:
    """How many channels before and after c the sum for channel c reaches; with the channel
    count known, at most channels - 1 each way (farther ones are the zeros past the ends), so
    a hostile size costs no more than a window over every channel."""
    before = (size - 1) // 2
    after = size - 1 - before
    if isinstance(channels, int):
        return min(before, max(channels - 1, 0)), min(after, max(channels - 1, 0))
    return before, after


def _channels(t: TensorType) -> Any:
    """The channel dim (axis 1) of type t: an int, a symbol, or None when unknown."""
    return t.shape[1] if t.shape is not None and len(t.shape) > 1 else None


def _lrn_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    need_float(x, "lrn's input")
    if int(attrs["size"]) < 1:
        raise ShapeError(f"lrn's size must be at least 1, got {attrs['size']}")
    if x.rank is not None and x.rank < 2:
        raise ShapeError(f"lrn needs an input [N, C, ...] of rank >= 2, got rank {x.rank}")
    if int(attrs["size"]) > MAX_SIZE and not isinstance(_channels(x), int):
        raise ShapeError(f"lrn's size {attrs['size']} is over {MAX_SIZE} with the channel "
                         "count unknown; give the input a static channel dim")
    return [TensorType(x.dtype, x.shape)]


def _lrn_kernel(x: np.ndarray, *, size: int, alpha: float, beta: float,
                bias: float) -> np.ndarray:
    channels = x.shape[1]
    before, after = _window(size, channels)
    sq = np.square(x)
    widths = [(0, 0)] * x.ndim
    widths[1] = (before, after)
    padded = np.pad(sq, widths)
    total = np.zeros_like(x)
    for k in range(before + after + 1):
        total += padded[:, k:k + channels]
    scale = (bias + (alpha / size) * total) ** beta
    return np.asarray(x / scale, x.dtype)


def window_sum(t: Tensor, before: int, after: int) -> Tensor:
    """Graph code for ``sum of t[:, c - before .. c + after]`` over the channel axis."""
    rank = t.type.rank
    pads = [0] * (2 * rank)
    pads[1], pads[rank + 1] = before, after
    padded = pad(t, pads)
    width = before + after
    total = None
    for k in range(width + 1):
        end = k - width if k < width else BIG
        piece = slice_(padded, [k], [end], axes=[1])
        total = piece if total is None else total + piece
    return total


def _lrn_vjp(b, c: Call, gys):
    """With s = bias + k S and k = alpha / size, dy/dx gives
    ``g s^-beta - 2 beta k x * window_sum^T(g x s^(-beta-1))``; the transposed window swaps the
    channels reached before and after."""
    (g,), (x,), a = gys, c.inputs, c.attrs
    before, after = _window(int(a["size"]), _channels(x.type))
    k = float(a["alpha"]) / int(a["size"])
    s = window_sum(x * x, before, after) * k + float(a["bias"])
    p = s ** (-float(a["beta"]))
    back = window_sum(g * x * p / s, after, before)
    return [g * p - x * back * (2.0 * float(a["beta"]) * k)]


def _lrn_fallback(ctx: Any, node: Any) -> None:
    """The definition as standard ops: the channel window sum of x^2 as one Slice per window
    position of the zero-padded squares, then ``x / (bias + alpha/size * sum) ** beta``."""
    x, a = node.inputs[0], node.attrs
    size, rank, dt = int(a["size"]), x.type.rank, x.type.dtype.np
    before, after = _window(size, _channels(x.type))
    sq = ctx.emit("Mul", [x, x])[0]
    pads = [0] * (2 * rank)
    pads[1], pads[rank + 1] = before, after
    if before or after:
        sq = ctx.emit("Pad", [sq, ctx.const(np.asarray(pads, np.int64))])[0]
    width, axis = before + after, ctx.const(np.array([1], np.int64))
    pieces = []
    for k in range(width + 1):
        end = np.array([k - width if k < width else BIG], np.int64)
        pieces += ctx.emit("Slice", [sq, ctx.const(np.array([k], np.int64)), ctx.const(end),
                                     axis])
    total = ctx.emit("Sum", pieces)[0]
    scaled = ctx.emit("Mul", [total, ctx.const(np.asarray(a["alpha"] / size, dt))])[0]
    base = ctx.emit("Add", [scaled, ctx.const(np.asarray(a["bias"], dt))])[0]
    denom = ctx.emit("Pow", [base, ctx.const(np.asarray(a["beta"], dt))])[0]
    ctx.emit("Div", [x, denom], node.outputs)


def _lrn_lower(ctx: Any, node: Any) -> None:
    """ONNX LRN where onnxruntime has a kernel that follows the definition (float32, 4-D input,
    odd size); elsewhere (float64, other ranks, even sizes) the definition as standard ops."""
    x, attrs = node.inputs[0], dict(node.attrs)
    if needs_fallback(x) or x.type.rank != 4 or int(attrs["size"]) % 2 == 0:
        _lrn_fallback(ctx, node)
        return
    channels = _channels(x.type)
    if isinstance(channels, int) and int(attrs["size"]) > 2 * channels - 1 > 0:
        # the same sums over a window that just spans every channel (onnxruntime would
        # allocate the whole window), with alpha / size kept
        attrs["alpha"] = float(attrs["alpha"]) * (2 * channels - 1) / int(attrs["size"])
        attrs["size"] = 2 * channels - 1
    ctx.emit("LRN", node.inputs, node.outputs, **attrs)


register(OpDef("lrn", _lrn_infer, (1, 1), kernel=_lrn_kernel, lower=_lrn_lower,
               vjp=_lrn_vjp,
               attrs={"size": REQUIRED, "alpha": 1e-4, "beta": 0.75, "bias": 1.0},
               doc="ONNX LRN: x / (bias + alpha/size * windowed channel sum of x^2)^beta."))


def lrn(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
        bias: float = 1.0) -> Tensor:
    """Local response normalisation across channels (axis 1) of ``x`` [N, C, ...]."""
    attrs: dict[str, Any] = {"size": int(size), "alpha": float(alpha), "beta": float(beta),
                             "bias": float(bias)}
    return x.b.apply1("lrn", [x], **attrs)
