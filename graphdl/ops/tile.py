"""Tile (ONNX Tile): ``x`` repeated ``repeats[i]`` times along each axis i.

``repeats`` is an int64 vector input, as in ONNX; shape inference follows it when its values
are known at build time (a constant, or shape arithmetic graphdl tracks).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import Call, OpDef, onnx_op, register
from ..core.types import Dim, TensorType, dim_mul, dims_equal, shape_str
from .common import int_vector
from .reduce import reduce_sum
from .shape import reshape, shape
from .slice import concat, slice_


def _tile_infer(types: list, attrs: dict) -> list[TensorType]:
    x, r = types
    int_vector(r, "tile's repeats")
    if x.shape is None:
        return [TensorType(x.dtype, None)]
    rank = len(x.shape)
    if r.shape is not None and dims_equal(r.shape[0], rank) is False:
        raise ShapeError(f"tile's repeats has {r.shape[0]} entries; input "
                         f"{shape_str(x.shape)} has rank {rank}")
    if r.known is None:
        return [TensorType(x.dtype, (None,) * rank)]
    if any(isinstance(k, int) and k < 0 for k in r.known):
        raise ShapeError(f"tile's repeats {list(r.known)} must not be negative")
    return [TensorType(x.dtype, tuple(_tiled(d, k) for d, k in zip(x.shape, r.known)))]


def _tiled(d: Dim, k: Any) -> Dim:
    return dim_mul(d, k) if isinstance(k, int) else None


def _tile_reps(x: np.ndarray, repeats: np.ndarray) -> list[int]:
    reps = [int(k) for k in np.asarray(repeats).reshape(-1)]
    if len(reps) != x.ndim or any(k < 0 for k in reps):
        raise ValueError(f"tile: repeats {reps} do not fit an input of shape {list(x.shape)}")
    return reps


def _tile_kernel(x: np.ndarray, repeats: np.ndarray) -> np.ndarray:
    return np.tile(x, _tile_reps(x, repeats))


def _tile_out_shape(x: np.ndarray, repeats: np.ndarray) -> tuple[int, ...]:
    return tuple(d * k for d, k in zip(x.shape, _tile_reps(x, repeats)))


def _tile_vjp(b, c: Call, gys):
    """Each input element is copied once per tile, so its cotangent sums the copies: view g as
    ``[r0, d0, r1, d1, ...]`` and sum over the r axes."""
    (g,), (x, r) = gys, c.inputs
    rank = x.type.rank
    if rank is None:
        raise ShapeError("the gradient of tile needs the input's rank")
    if rank == 0:
        return [g, None]
    pieces = []
    for i in range(rank):
        k = None if r.type.known is None else r.type.known[i]
        pieces.append(b.const(np.asarray([k], np.int64)) if isinstance(k, int)
                      else slice_(r, [i], [i + 1]))
        d = x.shape[i]
        pieces.append(b.const(np.asarray([d], np.int64)) if isinstance(d, int)
                      else shape(x, i, i + 1))
    split = reshape(g, concat(pieces, 0), allowzero=True)
    gx = reduce_sum(split, axes=tuple(range(0, 2 * rank, 2)), keepdims=False)
    return [gx, None]


register(OpDef("tile", _tile_infer, (2, 2), kernel=_tile_kernel, lower=onnx_op("Tile"),
               vjp=_tile_vjp, traits={"shape"}, out_shape=_tile_out_shape,
               doc="ONNX Tile: x repeated repeats[i] times along axis i."))


def tile(x: Tensor, repeats: Tensor | Sequence[int]) -> Tensor:
    """``x`` repeated ``repeats[i]`` times along axis i (an int64 vector tensor or ints)."""
    r = repeats if isinstance(repeats, Tensor) else \
        x.b.const(np.asarray(repeats, np.int64).reshape(-1))
    return x.b.apply1("tile", [x, r])
