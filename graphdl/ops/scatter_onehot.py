"""ScatterElements with reduction 'add' before opset 16, which lacks the reduction: the same
sums as one-hot products (OneHot exists from opset 9, with negative indices from 11).

For data D, indices I and updates U of one shape S (S fits D off ``axis``): the one-hot rows
of I along a new last axis, times U, summed over ``axis`` and moved into its place, hold at
every position of D the sum of the updates aimed there; padded to D's shape and added to D.
It costs prod(S) * D[axis] elements, where ScatterElements costs prod(S): only old targets
take this path (gather's gradient, max pooling's scattered gradient at opsets 13-15).
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: the opset that gave ScatterElements its reduction attribute
REDUCTION_OPSET = 16


def emit_scatter_add(ctx: Any, data: Any, idx: Any, upd: Any, axis: int, out: Any,
                     rank: int, dtype: Any) -> None:
    """Emits ``out = data`` with ``upd`` added at ``idx`` along ``axis``: ScatterElements(add)
    where the target opset has it, else the one-hot sums. ``rank`` and ``dtype`` are the
    data's (an ONNX element type code)."""
    if ctx.opset >= REDUCTION_OPSET:
        ctx.emit("ScatterElements", [data, idx, upd], [out], axis=axis, reduction="add")
        return
    axis %= rank
    ints = lambda v: ctx.const(np.asarray(v, np.int64))  # noqa: E731
    shape = ctx.emit("Shape", [data])[0]
    depth = ctx.emit("Gather", [shape, ints([axis])])[0]
    idx64 = ctx.emit("Cast", [idx], to=7)[0]  # int64
    hot = ctx.emit("OneHot", [idx64, depth, ctx.const(np.array([0, 1], np.float32))],
                   axis=-1)[0]
    hot = ctx.emit("Cast", [hot], to=dtype)[0]
    picked = ctx.emit("Mul", [hot, ctx.emit("Unsqueeze", [upd, ints([rank])])[0]])[0]
    summed = ctx.emit("ReduceSum", [picked, ints([axis])], keepdims=0)[0]
    perm = list(range(rank - 1))
    perm.insert(axis, rank - 1)
    moved = ctx.emit("Transpose", [summed], perm=perm)[0]
    short = ctx.emit("Sub", [shape, ctx.emit("Shape", [moved])[0]])[0]
    pads = ctx.emit("Concat", [ints([0] * rank), short], axis=0)[0]
    full = ctx.emit("Pad", [moved, pads])[0]
    ctx.emit("Add", [data, full], [out])
