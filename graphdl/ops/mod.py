"""ONNX Mod: the remainder of a division, elementwise with broadcasting. With ``fmod`` the
remainder takes the dividend's sign (C's fmod; floats need it), else the divisor's (Python's
%). PyTorch's attention export computes head counts with it."""
from __future__ import annotations

import numpy as np

from ..core.builder import Tensor
from ..core.errors import DTypeError
from ..core.registry import Call, OpDef, register
from ..core.types import DType, TensorType
from .common import broadcast_infer, unbroadcast


def _mod_infer(types: list, attrs: dict) -> list[TensorType]:
    """The broadcast rule; on int shape vectors known at build time, their remainders (so a
    reshape computed from them keeps its shape, as in PyTorch's attention export)."""
    (out,) = broadcast_infer(types, attrs)
    if types[0].dtype == DType.bool or types[0].dtype.is_string:
        raise DTypeError(f"mod needs numbers, got {types[0].dtype.name}")
    a, c = types[0].known, types[1].known
    if a is None or c is None or out.shape is None or len(out.shape) > 1 or \
            not all(isinstance(x, int) for x in a + c) or 0 in c:
        return [out]
    n = max(len(a), len(c))
    if len(a) not in (1, n) or len(c) not in (1, n):
        return [out]
    a, c = (a * n if len(a) == 1 else a), (c * n if len(c) == 1 else c)
    rem = _mod_kernel(np.asarray(a, np.int64), np.asarray(c, np.int64), fmod=attrs["fmod"])
    return [TensorType(out.dtype, out.shape, tuple(int(r) for r in rem))]


def _mod_kernel(a: np.ndarray, b: np.ndarray, *, fmod: bool) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.fmod(a, b) if fmod else np.mod(a, b), a.dtype)


def _mod_vjp(bld, c: Call, gys):
    """y = a - b * q with q = trunc(a / b) (fmod) or floor(a / b), constant between the
    jumps: dy/da = 1, dy/db = -q = (y - a) / b."""
    a, b = c.inputs
    if not a.dtype.is_float:
        return [None, None]
    g, y = gys[0], c.outputs[0]
    return [unbroadcast(g, a.shape), unbroadcast(g * (y - a) / b, b.shape)]


def _mod_lower(ctx, node) -> None:
    """ONNX Mod; a floored float Mod (fmod=0, new in opset 28) below opset 28 as
    a - b * floor(a / b)."""
    a, b = node.inputs
    if node.attrs["fmod"] or not a.type.dtype.is_float or ctx.opset >= 28:
        ctx.emit("Mod", node.inputs, node.outputs, fmod=int(node.attrs["fmod"]))
        return
    (q,) = ctx.emit("Floor", [ctx.emit("Div", [a, b])[0]])
    ctx.emit("Sub", [a, ctx.emit("Mul", [b, q])[0]], node.outputs)


register(OpDef("mod", _mod_infer, (2, 2), kernel=_mod_kernel, lower=_mod_lower,
               vjp=_mod_vjp, attrs={"fmod": False},
               doc="remainder of a / b (the divisor's sign; the dividend's with fmod)."))


def mod(a: Tensor, b: Tensor, fmod: bool = False) -> Tensor:
    return a.b.apply1("mod", [a, a.b.lift(b, a)], fmod=bool(fmod))
