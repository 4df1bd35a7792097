"""Constant padding (ONNX Pad, mode 'constant'), with pad widths as an int64 input.

``pads`` is ``[begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}]``; a negative width crops, as
in ONNX. Cropping makes the gradient simple: the VJP of ``pad(x, p)`` is ``pad(g, -p)``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import Call, OpDef, register
from ..core.types import Dim, TensorType, dims_equal
from .common import WIDEN_SMALL, int_vector


def _padded(d: Dim, begin: Any, end: Any) -> Dim:
    if not (isinstance(begin, int) and isinstance(end, int)):
        return None
    if isinstance(d, int):
        if d + begin + end < 0:
            raise ShapeError(f"pads {begin}, {end} crop more than the dim {d}")
        return d + begin + end
    return d if begin + end == 0 else None


def _pad_infer(types: list, attrs: dict) -> list[TensorType]:
    x, p = types
    int_vector(p, "pads")
    if x.shape is None:
        return [TensorType(x.dtype, None)]
    r = len(x.shape)
    if p.shape is not None and dims_equal(p.shape[0], 2 * r) is False:
        raise ShapeError(f"pads has {p.shape[0]} widths; a rank-{r} input needs {2 * r}")
    if p.known is None:
        return [TensorType(x.dtype, (None,) * r)]
    out = tuple(_padded(d, p.known[i], p.known[r + i]) for i, d in enumerate(x.shape))
    return [TensorType(x.dtype, out)]


def _pad_kernel(x: np.ndarray, pads: np.ndarray, *, value: float) -> np.ndarray:
    r = x.ndim
    begin, end = [int(v) for v in pads[:r]], [int(v) for v in pads[r:]]
    if any(d + b + e < 0 for d, b, e in zip(x.shape, begin, end)):
        raise ValueError(f"pads {pads.tolist()} crop more than the shape {list(x.shape)}")
    crop = tuple(slice(max(-b, 0), d - max(-e, 0)) for d, b, e in zip(x.shape, begin, end))
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    return np.pad(x[crop], widths, mode="constant", constant_values=np.asarray(value, x.dtype))


def _pad_out_shape(x: np.ndarray, pads: np.ndarray, **_: Any) -> tuple[int, ...]:
    r = x.ndim
    return tuple(max(0, d + int(b) + int(e)) for d, b, e in zip(x.shape, pads[:r], pads[r:]))


def _pad_lower(ctx: Any, node: Any) -> None:
    x, p = node.inputs
    value = ctx.const(np.asarray(node.attrs["value"], x.type.dtype.np))
    ctx.emit("Pad", [x, p, value], node.outputs, mode="constant")


def _pad_vjp(b, c: Call, gys):
    """Pad is linear in x up to its constant: the cotangent is g with the padding cut away."""
    p = c.inputs[1]
    known = p.type.known
    neg = b.const(-np.asarray(known, np.int64)) if known is not None and \
        all(isinstance(v, int) for v in known) else -p
    return [pad(gys[0], neg), None]


register(OpDef("pad", _pad_infer, (2, 2), kernel=_pad_kernel, lower=_pad_lower, vjp=_pad_vjp,
               attrs={"value": 0.0}, traits={"shape"}, out_shape=_pad_out_shape,
               widen=WIDEN_SMALL,
               doc="ONNX Pad (constant): widths [begins..., ends...]; negative widths crop."))


def pad(x: Tensor, pads: Tensor | Sequence[int], value: float = 0.0) -> Tensor:
    """``x`` with ``pads[i]`` values before and ``pads[r + i]`` after axis i (ONNX layout);
    negative widths crop."""
    p = pads if isinstance(pads, Tensor) else x.b.const(np.asarray(pads, np.int64).reshape(-1))
    return x.b.apply1("pad", [x, p], value=float(value))
