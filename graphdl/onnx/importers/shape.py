"""Importers of shape plumbing and data movement: Reshape, Expand, Transpose, Flatten, Concat,
Squeeze, Unsqueeze, Shape, ConstantOfShape, Gather, Slice, Range, GatherElements,
ScatterElements, Split, Pad and Tile. Where an op changed between opsets (a shape, axes, pads
or split sizes as an attribute or an input), the function reads both forms.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ... import ops
from ...core.builder import Tensor
from ..importer import NodeCtx
from . import importer


def _apply(c: NodeCtx, op: str, ins: Sequence[Tensor | None], **attrs) -> Tensor:
    return c.b.apply1(op, ins, **attrs)


@importer("Reshape")
def _reshape(c: NodeCtx) -> Tensor:
    """The target shape is an input from opset 5, an attribute before."""
    if c.has(1):
        target = c.int_vector(1)
    else:
        target = c.b.const(np.asarray(c.attr("shape"), np.int64).reshape(-1))
    return _apply(c, "reshape", [c.x(0), target], allowzero=int(c.attr("allowzero", 0)))


@importer("Expand")
def _expand(c: NodeCtx) -> Tensor:
    return _apply(c, "expand", [c.x(0), c.int_vector(1)])


@importer("Transpose")
def _transpose(c: NodeCtx) -> Tensor:
    perm = c.attr("perm", None)
    return ops.transpose(c.x(0), None if perm is None else tuple(int(p) for p in perm))


@importer("Flatten")
def _flatten(c: NodeCtx) -> Tensor:
    return ops.flatten(c.x(0), int(c.attr("axis", 1)))


@importer("Concat")
def _concat(c: NodeCtx) -> Tensor:
    return _apply(c, "concat", c.xs(), axis=int(c.attr("axis")))


@importer("Squeeze")
def _squeeze(c: NodeCtx) -> Tensor:
    """Axes as an attribute (opset < 13) or an optional input (>= 13); none: all 1-dims."""
    axes = c.ints(1, "axes") if c.has(1) else c.attr("axes", None)
    return ops.squeeze(c.x(0), None if axes is None else tuple(int(a) for a in axes))


@importer("Unsqueeze")
def _unsqueeze(c: NodeCtx) -> Tensor:
    """Axes as an attribute (opset < 13) or an input (>= 13)."""
    axes = c.ints(1, "axes") if c.has(1) else c.attr("axes")
    return ops.unsqueeze(c.x(0), tuple(int(a) for a in axes))


@importer("Shape")
def _shape(c: NodeCtx) -> Tensor:
    end = c.attr("end", None)
    return ops.shape(c.x(0), int(c.attr("start", 0)), None if end is None else int(end))


@importer("ConstantOfShape")
def _constant_of_shape(c: NodeCtx) -> Tensor:
    value = np.asarray(c.attr("value", np.zeros(1, np.float32)))
    return _apply(c, "constant_of_shape", [c.int_vector(0)], value=value.reshape(()))


@importer("Gather")
def _gather(c: NodeCtx) -> Tensor:
    return _apply(c, "gather", [c.x(0), c.x(1)], axis=int(c.attr("axis", 0)))


@importer("Slice")
def _slice(c: NodeCtx) -> Tensor:
    """starts/ends/axes as attributes (opset < 10) or inputs with optional steps (>= 10)."""
    x = c.x(0)
    if c.opset < 10:
        starts, ends = c.attr("starts"), c.attr("ends")
        return ops.slice_(x, list(starts), list(ends), axes=c.attr("axes", None))
    axes = c.int_vector(3) if c.has(3) else None
    steps = c.int_vector(4) if c.has(4) else None
    return ops.slice_(x, c.int_vector(1), c.int_vector(2), axes=axes, steps=steps)


@importer("Range")
def _range(c: NodeCtx) -> Tensor:
    """Bounds known at import time become constants, so the length is static (and checked
    against the byte budget before anything runs)."""
    ins = []
    for i in range(3):
        known = c.static(i)
        scalar = known is not None and np.asarray(known).size == 1
        ins.append(c.b.const(np.asarray(known).reshape(())) if scalar else c.x(i))
    return _apply(c, "range", ins)


@importer("GatherElements")
def _gather_elements(c: NodeCtx) -> Tensor:
    return ops.gather_elements(c.x(0), c.x(1), int(c.attr("axis", 0)))


@importer("ScatterElements")
def _scatter_elements(c: NodeCtx) -> Tensor:
    """reduction 'add' is scatter_add, 'mul'/'max'/'min' scatter_reduce; 'none' (the
    default) overwrites: scatter_add of the updates into zeros where any index lands, the data
    elsewhere (with repeated indices ONNX leaves the result undefined; here they add)."""
    data, idx, upd = c.x(0), c.x(1), c.x(2)
    axis, reduction = int(c.attr("axis", 0)), c.attr("reduction", "none")
    if reduction == "add":
        return ops.scatter_add(data, idx, upd, axis)
    if reduction in ("mul", "max", "min"):
        return ops.scatter_reduce(data, idx, upd, axis, reduction)
    if reduction != "none":
        raise c.fail(f"ScatterElements reduction {reduction!r} is not supported; graphdl "
                     "imports 'none', 'add', 'mul', 'max' and 'min'")
    zeros = ops.zeros_like(data)
    ones = ops.constant_of_shape(ops.shape_of(upd), 1, upd.dtype)
    hit = ops.scatter_add(zeros, idx, ones, axis)
    return ops.where(ops.greater(hit, 0), ops.scatter_add(zeros, idx, upd, axis), data)


# -- split, pad, tile --------------------------------------------------------------------------


@importer("Split")
def _split(c: NodeCtx) -> list[Tensor]:
    """Sizes from the ``split`` attribute (opset < 13) or input (>= 13); without them, equal
    parts, one per output, or ``num_outputs`` parts (opset >= 18) where the last may be
    smaller."""
    x, axis = c.x(0), int(c.attr("axis", 0))
    sizes = c.ints(1, "split") if c.has(1) else c.attr("split", None)
    if sizes is None:
        sizes = _equal_parts(c, x, axis)
    return ops.split(x, [int(s) for s in sizes], axis)


def _equal_parts(c: NodeCtx, x: Tensor, axis: int) -> list[int]:
    rank = x.type.rank
    d = None if rank is None or not -rank <= axis < rank else x.shape[axis]
    if not isinstance(d, int):
        raise c.fail(f"splitting axis {axis} of {x.type} into equal parts needs a static "
                     "size there")
    n = int(c.attr("num_outputs", len(c.node.output)))
    if n != len(c.node.output) or n < 1:
        raise c.fail(f"num_outputs is {n} but the node has {len(c.node.output)} outputs")
    if "num_outputs" in c.attrs:
        step = -(-d // n)
        return [min(step, d - k * step) for k in range(n)]
    if d % n:
        raise c.fail(f"axis {axis} of {x.type} does not split into {n} equal parts")
    return [d // n] * n


@importer("Pad")
def _pad(c: NodeCtx) -> Tensor:
    """Constant mode only. Pads and value are attributes before opset 11, inputs after (the
    pads may be computed in the graph); ``axes`` (opset >= 18) names the axes padded."""
    mode, x = c.attr("mode", "constant"), c.x(0)
    if c.opset < 11:
        pads = c.b.const(np.asarray(c.attr("pads", c.attr("paddings", ())), np.int64))
        value = float(c.attr("value", 0.0))
    else:
        pads, value = c.int_vector(1), _pad_value(c)
        if c.has(3):
            pads = _pads_for_axes(c, x, pads, c.ints(3, "axes"))
    if mode == "constant":
        return ops.pad(x, pads, value)
    if mode not in _BORDERS:
        raise c.fail(f"pad mode {mode!r} is unknown; expected constant, reflect, edge or wrap")
    known = pads.type.known
    if known is None or not all(isinstance(p, int) for p in known):
        raise c.fail(f"pad mode {mode!r} needs the pads at import time")
    return _pad_border(x, list(known), mode)


def _pad_value(c: NodeCtx) -> float:
    if not c.has(2):
        return 0.0
    v = c.static(2)
    if v is None:
        raise c.fail("the pad value (input 2) must be a constant; graphdl needs it at import "
                     "time")
    return float(np.asarray(v).reshape(-1)[0]) if np.asarray(v).size else 0.0


def _pads_for_axes(c: NodeCtx, x: Tensor, pads: Tensor, axes: tuple) -> Tensor:
    """Pads for every axis, gathered from ``pads`` (for ``axes``) and a trailing zero."""
    rank = x.type.rank
    if rank is None:
        raise c.fail(f"pad with axes needs the input's rank, got {x.type}")
    n = len(axes)
    where = [2 * n] * (2 * rank)  # index of the appended zero
    for k, a in enumerate(axes):
        a = int(a) % rank
        where[a], where[rank + a] = k, n + k
    padded = ops.concat([pads, c.b.const(np.zeros(1, np.int64))], 0)
    return ops.gather(padded, c.b.const(np.asarray(where, np.int64)), 0)


BIG = np.iinfo(np.int64).max
#: for each non-constant pad mode: the slices (start, end, step) of one axis that make the
#: ``n`` values before it and the ``n`` values after it
_BORDERS = {
    "reflect": (lambda n: (n, 0, -1), lambda n: (-2, -2 - n, -1)),
    "edge": (lambda n: (0, 1, 1), lambda n: (-1, BIG, 1)),
    "wrap": (lambda n: (-n, BIG, 1), lambda n: (0, n, 1)),
}


def _pad_border(x: Tensor, pads: list[int], mode: str) -> Tensor:
    """Reflect, edge and wrap padding as slices and concats, one axis at a time (negative
    pads crop first)."""
    rank = len(pads) // 2
    x = ops.pad(x, [min(p, 0) for p in pads])
    before, after = _BORDERS[mode]
    for a in range(rank):
        parts = []
        for n, side in ((pads[a], before), (pads[rank + a], after)):
            if n <= 0:
                parts.append(None)
                continue
            start, end, step = side(n)
            piece = ops.slice_(x, [start], [end], [a], [step])
            if mode == "edge":
                reps = [1] * rank
                reps[a] = n
                piece = ops.tile(piece, reps)
            parts.append(piece)
        if parts[0] is not None or parts[1] is not None:
            x = ops.concat([p for p in (parts[0], x, parts[1]) if p is not None], a)
    return x


@importer("Tile")
def _tile(c: NodeCtx) -> Tensor:
    return ops.tile(c.x(0), c.int_vector(1))
