"""Local response normalisation (ONNX LRN), as used by AlexNet, Inception v1 and ZFNet.

``y = x / (bias + alpha / size * S) ** beta`` where ``S[n, c]`` sums ``x[n, c'] ** 2`` over the
channels ``c - floor((size - 1) / 2) <= c' <= c + ceil((size - 1) / 2)`` (zeros past the ends).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..builder import Tensor
from ..errors import ShapeError
from ..registry import REQUIRED, Call, OpDef, onnx_op, register
from ..types import TensorType
from .common import need_float

BIG = np.iinfo(np.int64).max


def _window(size: int) -> tuple[int, int]:
    """How many channels before and after c the sum for channel c reaches."""
    before = (size - 1) // 2
    return before, size - 1 - before


def _lrn_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    need_float(x, "lrn's input")
    if int(attrs["size"]) < 1:
        raise ShapeError(f"lrn's size must be at least 1, got {attrs['size']}")
    if x.rank is not None and x.rank < 2:
        raise ShapeError(f"lrn needs an input [N, C, ...] of rank >= 2, got rank {x.rank}")
    return [TensorType(x.dtype, x.shape)]


def _lrn_kernel(x: np.ndarray, *, size: int, alpha: float, beta: float,
                bias: float) -> np.ndarray:
    before, after = _window(size)
    sq = np.square(x)
    widths = [(0, 0)] * x.ndim
    widths[1] = (before, after)
    padded = np.pad(sq, widths)
    total = np.zeros_like(x)
    channels = x.shape[1]
    for k in range(size):
        total += padded[:, k:k + channels]
    scale = (bias + (alpha / size) * total) ** beta
    return np.asarray(x / scale, x.dtype)


def window_sum(t: Tensor, before: int, after: int) -> Tensor:
    """Graph code for ``sum of t[:, c - before .. c + after]`` over the channel axis."""
    from .pad import pad
    from .slice import slice_

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
    before, after = _window(int(a["size"]))
    k = float(a["alpha"]) / int(a["size"])
    s = window_sum(x * x, before, after) * k + float(a["bias"])
    p = s ** (-float(a["beta"]))
    back = window_sum(g * x * p / s, after, before)
    return [g * p - x * back * (2.0 * float(a["beta"]) * k)]


register(OpDef("lrn", _lrn_infer, (1, 1), kernel=_lrn_kernel, lower=onnx_op("LRN"),
               vjp=_lrn_vjp,
               attrs={"size": REQUIRED, "alpha": 1e-4, "beta": 0.75, "bias": 1.0},
               doc="ONNX LRN: x / (bias + alpha/size * windowed channel sum of x^2)^beta."))


def lrn(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
        bias: float = 1.0) -> Tensor:
    """Local response normalisation across channels (axis 1) of ``x`` [N, C, ...]."""
    attrs: dict[str, Any] = {"size": int(size), "alpha": float(alpha), "beta": float(beta),
                             "bias": float(bias)}
    return x.b.apply1("lrn", [x], **attrs)
