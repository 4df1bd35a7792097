"""Dropout as a composite: ``x * mask / (1 - rate)`` with a keep-mask of 0s and 1s.

Inverted scaling keeps each unit's expected value, so the inference graph simply leaves dropout
out (graphdl.nn.Dropout in inference mode is the identity). The mask is an ordinary tensor: a
graph input fed each step (what cross-engine tests compare, since ONNX's random ops differ
between engines), or a mask drawn in the graph by ``random_keep_mask`` (ONNX
RandomUniformLike). ``passes.training_step`` lists fed masks and their rates in the
training-step manifest so a trainer can draw them.
"""
from __future__ import annotations

import numpy as np

from ..core.builder import Tensor
from ..core.errors import GraphError, ShapeError
from ..core.registry import OpDef, no_grad, register
from ..core.types import TensorType
from .common import broadcast_infer, need_float
from .elementwise import cast


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise GraphError(f"dropout rate must be in [0, 1), got {rate}")


def _dropout_infer(types: list, attrs: dict) -> list[TensorType]:
    _check_rate(attrs["rate"])
    need_float(types[0], "dropout input")
    (out,) = broadcast_infer(types, attrs)
    if out.shape != types[0].shape and types[0].shape is not None:
        raise ShapeError(f"dropout mask {types[1]} must broadcast to the input {types[0]}")
    return [out]


def _dropout_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    x, mask = ins
    scale = b.const(np.asarray(1.0 / (1.0 - attrs["rate"]), x.dtype.np))
    return [x * (mask * scale)]


register(OpDef("dropout", _dropout_infer, (2, 2), decompose=_dropout_decompose,
               attrs={"rate": 0.5}, traits={"composite"}, mask=(1, "rate"),
               doc="x * mask / (1 - rate); mask holds 1 for kept units, 0 for dropped ones."))


# -- an in-graph random mask -------------------------------------------------------------------

def _uniform_kernel(x: np.ndarray, *, seed: int | None,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """Uniform [0, 1) numbers shaped like x, drawn from ``rng``: a compiled plan passes its own
    stream for the seed, which advances run by run as onnxruntime's seeded kernel does (the
    two engines' streams differ), so the draws depend on nothing else the process ran. Without
    ``rng``, a new stream from ``seed``."""
    if rng is None:
        rng = np.random.default_rng(None if seed is None else int(seed))
    return rng.random(x.shape).astype(x.dtype)


def _uniform_lower(ctx, node) -> None:
    """ONNX RandomUniformLike. Stock onnxruntime 1.32 implements it (like every random op)
    only up to its opset-21 version: the portable default opset (17) has it, and a target
    runtime's opset is capped at 21 for a graph holding it
    (onnx/opsets.py: ORT_RANDOM_MAX_OPSET)."""
    seed = node.attrs["seed"]
    ctx.emit("RandomUniformLike", node.inputs, node.outputs, low=0.0, high=1.0,
             seed=None if seed is None else float(seed))


def _uniform_infer(types: list, attrs: dict) -> list[TensorType]:
    need_float(types[0], "random_uniform_like input")
    return [TensorType(types[0].dtype, types[0].shape)]


#: ops with the "random" trait take ``rng=`` (a numpy Generator) from the engine
register(OpDef("random_uniform_like", _uniform_infer, (1, 1), kernel=_uniform_kernel,
               lower=_uniform_lower, vjp=no_grad, attrs={"seed": None},
               traits={"random", "nondiff"},
               doc="Uniform [0, 1) numbers shaped like the input (ONNX RandomUniformLike)."))


def random_keep_mask(x: Tensor, rate: float, seed: int | None = None) -> Tensor:
    """A keep-mask drawn in the graph, each entry 1 with probability ``1 - rate``. Engines draw
    different numbers, so runs compare across engines only with fed masks; onnxruntime runs the
    exported op at opset 21 or lower, which the export picks (see ``_uniform_lower``)."""
    _check_rate(rate)
    u = x.b.apply1("random_uniform_like", [x], seed=seed)
    return cast(x.b.apply1("greater_or_equal", [u, x.b.lift(rate, like=u)]), x.dtype)


def dropout(x: Tensor, mask: Tensor, rate: float) -> Tensor:
    """Inverted dropout of ``x`` with the keep-mask ``mask`` (1 = keep) drawn at ``rate``."""
    return x.b.apply1("dropout", [x, mask], rate=float(rate))


def keep_mask(rng: np.random.Generator, shape: tuple[int, ...], rate: float,
              dtype: np.dtype | type = np.float32) -> np.ndarray:
    """A keep-mask to feed: each entry 1 with probability ``1 - rate``, else 0."""
    _check_rate(rate)
    return (rng.random(shape) >= rate).astype(dtype)
