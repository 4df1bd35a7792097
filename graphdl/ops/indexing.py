"""``Tensor.__getitem__``: basic NumPy indexing with ints and slices, built from Slice and
Squeeze so that it differentiates and exports like any other op."""
from __future__ import annotations

from typing import Any

from ..core.builder import TENSOR_METHODS, Tensor
from ..core.errors import ShapeError
from .shape import squeeze
from .slice import slice_

_END = 2 ** 63 - 1


def getitem(x: Tensor, key: Any) -> Tensor:
    """``x[key]`` for a key of ints, slices and at most one Ellipsis."""
    keys = list(key) if isinstance(key, tuple) else [key]
    rank = x.type.rank
    if rank is None:
        raise ShapeError("indexing needs a tensor of known rank")
    if sum(k is Ellipsis for k in keys) > 1:
        raise ShapeError("an index can have only one Ellipsis")
    if Ellipsis in keys:
        i = keys.index(Ellipsis)
        keys[i:i + 1] = [slice(None)] * (rank - len(keys) + 1)
    if len(keys) > rank:
        raise ShapeError(f"too many indices ({len(keys)}) for a tensor of rank {rank}")
    starts, ends, axes, steps, dropped = [], [], [], [], []
    for axis, k in enumerate(keys):
        if isinstance(k, slice):
            if k == slice(None):
                continue
            step = 1 if k.step is None else int(k.step)
            if step == 0:
                raise ShapeError("slice step cannot be zero")
            default_start, default_end = (0, _END) if step > 0 else (-1, -_END)
            starts.append(default_start if k.start is None else int(k.start))
            ends.append(default_end if k.stop is None else int(k.stop))
        elif isinstance(k, int) and not isinstance(k, bool):
            starts.append(k)
            ends.append(k + 1 if k != -1 else _END)
            step = 1
            dropped.append(axis)
        else:
            raise ShapeError(f"unsupported index {k!r}: use ints, slices and '...'")
        axes.append(axis)
        steps.append(step)
    out = slice_(x, starts, ends, axes, steps) if axes else x
    return squeeze(out, dropped) if dropped else out


TENSOR_METHODS["getitem"] = getitem  # x[key] on a Tensor
