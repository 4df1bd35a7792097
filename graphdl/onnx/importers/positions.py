"""Importers of Einsum (opset 12), Trilu (14), CumSum (11), ArgMax (1, 11, 12, 13) and
OneHot (9, 11). The diagonal offset, the scan axis and the depth must be known at import
time."""
from __future__ import annotations

import numpy as np

from ...core.builder import Tensor
from ..importer import NodeCtx
from ...ops.einsum import einsum
from ...ops.positions import argmax, cumsum, one_hot_values, trilu
from . import importer


def _scalar(c: NodeCtx, i: int, what: str, default: int | None = None) -> int:
    if not c.has(i) and default is not None:
        return default
    vals = c.ints(i, what)
    if len(vals) != 1:
        raise c.fail(f"{what} must hold one value, got {len(vals)}")
    return vals[0]


@importer("Trilu")
def _trilu(c: NodeCtx) -> Tensor:
    return trilu(c.x(0), _scalar(c, 1, "k", 0), bool(c.attr("upper", 1)))


@importer("CumSum")
def _cumsum(c: NodeCtx) -> Tensor:
    return cumsum(c.x(0), _scalar(c, 1, "axis"), bool(c.attr("exclusive", 0)),
                  bool(c.attr("reverse", 0)))


@importer("ArgMax")
def _argmax(c: NodeCtx) -> Tensor:
    """select_last_index exists from opset 12 (0 before)."""
    return argmax(c.x(0), int(c.attr("axis", 0)), bool(c.attr("keepdims", 1)),
                  bool(c.attr("select_last_index", 0)))


@importer("OneHot")
def _one_hot(c: NodeCtx) -> Tensor:
    """depth may be any numeric type; ONNX truncates a float depth to an integer."""
    depth = c.static(1)
    if depth is None:
        raise c.fail("depth (input 1) must be a constant; graphdl needs it at import time")
    depth = np.asarray(depth).reshape(-1)
    if depth.size != 1:
        raise c.fail(f"depth must hold one value, got {depth.size}")
    return one_hot_values(c.x(0), c.x(2), int(depth[0]), int(c.attr("axis", -1)))


@importer("Einsum")
def _einsum(c: NodeCtx) -> Tensor:
    return einsum(str(c.attr("equation")), *c.xs())
