"""Importer of ONNX RandomUniformLike, which graphdl itself exports for an in-graph dropout
mask, so every op graphdl writes it can read back."""
from __future__ import annotations

from ...core.builder import Tensor
from ...core.types import DType
from ...ops.elementwise import cast
from ..importer import NodeCtx
from . import importer


@importer("RandomUniformLike")
def _random_uniform_like(c: NodeCtx) -> Tensor:
    """Uniform numbers in [low, high) shaped like the input, of the ``dtype`` attribute (else
    the input's dtype); the seed, when given, picks the stream."""
    x = c.x(0)
    dtype = c.attr("dtype", None)
    if dtype is not None:
        x = cast(x, DType.from_onnx(int(dtype)))
    if not x.dtype.is_float:
        raise c.fail(f"RandomUniformLike needs a float output dtype, got {x.dtype.name}")
    seed = c.attr("seed", None)
    u = c.b.apply1("random_uniform_like", [x], seed=None if seed is None else int(seed))
    low, high = float(c.attr("low", 0.0)), float(c.attr("high", 1.0))
    if (low, high) == (0.0, 1.0):
        return u
    return u * (high - low) + low
