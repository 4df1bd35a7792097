"""Split: one tensor into several along an axis (a multi-output op)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import REQUIRED, Call, OpDef, register
from ..core.types import TensorType, dims_equal, shape_str
from .common import int_tuple, norm_axis
from .shape import zeros_like
from .slice import concat


def _split_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    sizes = int_tuple(attrs["sizes"], "split sizes")
    if x.shape is None:
        return [TensorType(x.dtype, None) for _ in sizes]
    axis = norm_axis(attrs["axis"], len(x.shape), "split axis")
    if dims_equal(x.shape[axis], sum(sizes)) is False:
        raise ShapeError(f"split sizes {list(sizes)} do not add up to axis {axis} of "
                         f"{shape_str(x.shape)}")
    return [TensorType(x.dtype, x.shape[:axis] + (s,) + x.shape[axis + 1:]) for s in sizes]


def _split_kernel(x: np.ndarray, *, axis: int,
                  sizes: Sequence[int]) -> "np.ndarray | tuple[np.ndarray, ...]":
    """Views of ``x`` by basic slicing (np.split costs ~10x more per call, which shows in the
    unrolled recurrent ops' many small splits)."""
    index: list = [slice(None)] * x.ndim
    pieces, start = [], 0
    for size in sizes:
        index[axis] = slice(start, start + size)
        pieces.append(x[tuple(index)])
        start += size
    return pieces[0] if len(pieces) == 1 else tuple(pieces)  # one output: the array itself


def _split_lower(ctx: Any, node: Any) -> None:
    sizes = ctx.const(np.asarray(node.attrs["sizes"], np.int64))
    ctx.emit("Split", [node.inputs[0], sizes], node.outputs, axis=node.attrs["axis"])


def _split_vjp(b, c: Call, gys):
    """The pieces' cotangents concatenated back; a piece nothing used contributes zeros."""
    parts = [g if g is not None else zeros_like(y) for g, y in zip(gys, c.outputs)]
    return [concat(parts, c.attrs["axis"])]


register(OpDef("split", _split_infer, (1, 1), kernel=_split_kernel, lower=_split_lower,
               vjp=_split_vjp, attrs={"axis": 0, "sizes": REQUIRED},
               traits={"shape", "moves_data"}))


def split(x: Tensor, sizes: Sequence[int], axis: int = 0) -> list[Tensor]:
    """``x`` cut along ``axis`` into pieces of the given sizes."""
    return x.b.apply("split", [x], axis=axis, sizes=tuple(int(s) for s in sizes))
