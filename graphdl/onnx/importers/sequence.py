"""Importers of ONNX sequence ops, resolved at import time ("static sequences").

graphdl's IR holds tensors only. A sequence in an imported graph becomes a Python tuple of
graphdl tensors, the way a compiler unrolls a list whose length it knows: SequenceEmpty,
SequenceConstruct, SequenceInsert, SequenceErase, SequenceAt, SequenceLength (an int64
constant), ConcatFromSequence, SplitToSequence and Identity build or read such tuples, and only
the tensors they hold reach the graph. So positions must be known at import time (initializers
or Constants), split sizes may be computed at run time only where their count is static, a
sequence graph input needs its length given to ``from_onnx`` and a sequence graph output
becomes one tensor output per element (see :mod:`graphdl.onnx.boundary`), and, as graphdl
imports no Loop or If, no sequence is loop-carried; anything else is refused with an OnnxError
naming the node and why.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Union

import numpy as np

from ... import ops
from ...core.builder import Tensor
from ..boundary import Absent
from ..importer import NodeCtx
from ...core.types import DType, dims_equal
from . import IMPORTERS, importer


#: a sequence element: a tensor, or a function making it on first use (see _lazy)
Item = Union[Tensor, Callable[[], Tensor]]


@dataclasses.dataclass(frozen=True)
class StaticSequence:
    """An ONNX sequence known at import time: its elements, their element type, and the node
    that made it (for error messages)."""

    items: tuple[Item, ...]
    dtype: DType
    where: str

    def tensor(self, k: int) -> Tensor:
        """Element ``k`` as a tensor, made now if it was deferred."""
        item = self.items[k]
        return item if isinstance(item, Tensor) else item()

    def with_items(self, c: NodeCtx, items: list[Item]) -> "StaticSequence":
        """The same kind of sequence holding ``items``, made by node ``c``."""
        return StaticSequence(tuple(items), self.dtype, c.where)


def _seq(c: NodeCtx, i: int) -> StaticSequence:
    """Input ``i`` as a static sequence; a tensor there is an error naming the node."""
    if not c.has(i):
        raise c.fail(f"input {i} (a sequence) is required")
    name = c.node.input[i]
    value = c.imp.env.get(name)
    if isinstance(value, Absent):
        raise c.fail(f"input {i} ({name!r}) is an absent optional (from {value.where}); op "
                     f"{c.node.op_type} reads a sequence there")
    if not isinstance(value, StaticSequence):
        raise c.fail(f"input {i} ({name!r}) is a tensor; op {c.node.op_type} reads a sequence "
                     "there")
    return value


def _position(c: NodeCtx, i: int, n: int, default: int, insert: bool = False) -> int:
    """Input ``i`` as a position in a sequence of length ``n`` (negative: from the end), which
    must be known at import time; ``insert`` also admits ``n`` (append)."""
    if not c.has(i):
        return default
    arr = c.static(i)
    if isinstance(c.imp.env.get(c.node.input[i]), StaticSequence):
        raise c.fail(f"position (input {i}, {c.node.input[i]!r}) is a sequence, not an integer")
    if arr is None:
        raise c.fail(f"position (input {i}, {c.node.input[i]!r}) is computed or fed at run "
                     "time; sequence positions must be known at import time (an initializer "
                     "or a Constant)")
    arr = np.asarray(arr)
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise c.fail(f"position (input {i}) must be one integer, got {arr.dtype} of shape "
                     f"{list(arr.shape)}")
    pos = int(arr.reshape(-1)[0])
    hi = n if insert else n - 1
    if not -n <= pos <= hi:
        raise c.fail(f"position {pos} is out of range for a sequence of length {n} "
                     f"(valid: {-n} to {hi})")
    return pos + n if pos < 0 else pos


def _check_dtype(c: NodeCtx, seq_dtype: DType, t: Tensor) -> None:
    if t.dtype != seq_dtype:
        raise c.fail(f"a sequence of {seq_dtype.name} cannot hold a {t.dtype.name} tensor")


# -- building sequences ------------------------------------------------------------------------


@importer("SequenceEmpty")
def _sequence_empty(c: NodeCtx) -> StaticSequence:
    dtype = DType.from_onnx(int(c.attr("dtype", 1)))  # default: float32
    return StaticSequence((), dtype, c.where)


@importer("SequenceConstruct")
def _sequence_construct(c: NodeCtx) -> StaticSequence:
    items = c.xs()
    if not items:
        raise c.fail("needs at least one input tensor")
    for t in items[1:]:
        _check_dtype(c, items[0].dtype, t)
    return StaticSequence(tuple(items), items[0].dtype, c.where)


@importer("SequenceInsert")
def _sequence_insert(c: NodeCtx) -> StaticSequence:
    seq, t = _seq(c, 0), c.x(1)
    _check_dtype(c, seq.dtype, t)
    n = len(seq.items)
    pos = _position(c, 2, n, n, insert=True)
    return seq.with_items(c, [*seq.items[:pos], t, *seq.items[pos:]])


@importer("SequenceErase")
def _sequence_erase(c: NodeCtx) -> StaticSequence:
    seq = _seq(c, 0)
    n = len(seq.items)
    if n == 0:
        raise c.fail("cannot erase from an empty sequence")
    pos = _position(c, 1, n, n - 1)
    return seq.with_items(c, [*seq.items[:pos], *seq.items[pos + 1:]])


@importer("SplitToSequence")
def _split_to_sequence(c: NodeCtx) -> StaticSequence:
    """Pieces of sizes ``split`` (a 1-D tensor, whose values may come at run time when its
    length is static), chunks of a scalar ``split`` (the last may be smaller), or without it
    pieces of 1 (squeezed unless ``keepdims``). The pieces are made on first use, so a sequence
    that is only counted leaves no dead node. Run-time sizes become slices between running
    sums; like any Slice they clamp, so sizes not adding up to the axis are not an error."""
    x = c.x(0)
    axis = _axis(c, x, int(c.attr("axis", 0)))
    if not c.has(1):
        sizes = [1] * _static_dim(c, x, axis)
        squeeze = not int(c.attr("keepdims", 1))
        return _lazy(c, x, len(sizes), lambda: _split(x, axis, sizes, squeeze))
    if c.static(1) is not None:
        sizes = _static_sizes(c, x, axis, np.asarray(c.static(1)))
        return _lazy(c, x, len(sizes), lambda: _split(x, axis, sizes, False))
    split = _runtime_sizes(c, c.x(1))
    n = split.shape[0]
    return _lazy(c, x, n, lambda: _slices(x, axis, split, n))


def _lazy(c: NodeCtx, x: Tensor, n: int, make: Callable[[], list[Tensor]]) -> StaticSequence:
    """A sequence of ``n`` elements that ``make`` builds together on the first one's use."""
    made = functools.cache(make)
    items = tuple(functools.partial(_nth, made, k) for k in range(n))
    return StaticSequence(items, x.dtype, c.where)


def _nth(made: Callable[[], list[Tensor]], k: int) -> Tensor:
    return made()[k]


def _axis(c: NodeCtx, x: Tensor, axis: int) -> int:
    rank = x.type.rank
    if rank is None or not -rank <= axis < rank:
        raise c.fail(f"axis {axis} does not fit the input {x.type} (its rank must be known)")
    return axis % rank


def _static_dim(c: NodeCtx, x: Tensor, axis: int) -> int:
    d = x.shape[axis]
    if not isinstance(d, int):
        raise c.fail(f"splitting axis {axis} of {x.type} into a sequence needs a static size "
                     "there (or a 1-D split tensor of static length)")
    return d


def _static_sizes(c: NodeCtx, x: Tensor, axis: int, split: np.ndarray) -> list[int]:
    """The piece sizes from a split known at import time, checked against the axis."""
    if split.ndim > 1 or split.dtype.kind not in "iu":
        raise c.fail(f"split must be an integer scalar or 1-D tensor, got {split.dtype} of "
                     f"shape {list(split.shape)}")
    if split.ndim == 1:
        sizes = [int(s) for s in split]
    else:
        d, step = _static_dim(c, x, axis), int(split)
        if step <= 0:
            raise c.fail(f"scalar split {step} must be positive")
        sizes = [step] * (d // step) + ([d % step] if d % step else [])
    if any(s < 0 for s in sizes):
        raise c.fail(f"split sizes {sizes} must not be negative")
    if dims_equal(x.shape[axis], sum(sizes)) is False:
        raise c.fail(f"split sizes {sizes} do not add up to axis {axis} of {x.type}")
    return sizes


def _split(x: Tensor, axis: int, sizes: list[int], squeeze: bool) -> list[Tensor]:
    pieces = ops.split(x, sizes, axis) if sizes else []
    return [ops.squeeze(p, (axis,)) for p in pieces] if squeeze else pieces


def _runtime_sizes(c: NodeCtx, split: Tensor) -> Tensor:
    """A split fed at run time as an int64 vector; its length (the count) must be static."""
    n = split.shape[0] if split.type.rank == 1 else None
    if not isinstance(n, int) or split.dtype.np.kind not in "iu":
        raise c.fail(f"split sizes fed at run time must be a 1-D int tensor of static length, "
                     f"got {split.type}; the sequence's length must be known at import time")
    return ops.cast(split, DType.int64) if split.dtype != DType.int64 else split


def _slices(x: Tensor, axis: int, split: Tensor, n: int) -> list[Tensor]:
    """Pieces between running sums of a 1-D size tensor known only at run time."""
    start = x.b.const(np.zeros(1, np.int64))
    pieces = []
    for k in range(n):
        end = start + ops.slice_(split, [k], [k + 1])
        pieces.append(ops.slice_(x, start, end, [axis]))
        start = end
    return pieces


# -- reading sequences -------------------------------------------------------------------------


@importer("SequenceAt")
def _sequence_at(c: NodeCtx) -> Tensor:
    seq = _seq(c, 0)
    n = len(seq.items)
    if not c.has(1):
        raise c.fail("input 1 (the position) is required")
    if n == 0:
        raise c.fail("cannot read from an empty sequence")
    return seq.tensor(_position(c, 1, n, 0))


@importer("SequenceLength")
def _sequence_length(c: NodeCtx) -> object:
    return c.defer_constant(np.asarray(len(_seq(c, 0).items), np.int64))


@importer("ConcatFromSequence")
def _concat_from_sequence(c: NodeCtx) -> Tensor:
    """The elements concatenated along ``axis``, or stacked along a new one (``new_axis``,
    where a negative axis counts from the end of the stacked rank)."""
    seq = _seq(c, 0)
    items = [seq.tensor(k) for k in range(len(seq.items))]
    if not items:
        raise c.fail("cannot concatenate an empty sequence")
    axis = int(c.attr("axis"))
    if int(c.attr("new_axis", 0)):
        rank = items[0].type.rank
        if rank is None or not -rank - 1 <= axis <= rank:
            raise c.fail(f"new axis {axis} does not fit elements {items[0].type}")
        axis %= rank + 1
        items = [ops.unsqueeze(t, (axis,)) for t in items]
    return ops.concat(items, axis)


_tensor_identity = IMPORTERS.pop("Identity")  # core's importer, kept for tensors


@importer("Identity")
def _identity(c: NodeCtx) -> "Tensor | StaticSequence | Absent":
    """Identity of a sequence is the same sequence, of an absent optional the same absence; of
    a tensor, core's tensor Identity."""
    value = c.imp.env.get(c.node.input[0]) if c.has(0) else None
    if isinstance(value, StaticSequence):
        return value.with_items(c, list(value.items))
    if isinstance(value, Absent):
        return value
    return _tensor_identity(c)

