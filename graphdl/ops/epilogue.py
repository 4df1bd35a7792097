"""Activation epilogues: an activation applied to a producer op's result in place.

``gemm`` and ``conv`` take an ``activation`` attribute (None or the name of an op whose OpDef
has an ``epilogue``: relu, sigmoid, tanh), which the fusion pass (``passes/fusion.py``,
ActivationFusion) sets when the activation is the only reader of their result. The activation's
OpDef gives what the producer needs:

- its in-place form (``OpDef.inplace``) on the producer's fresh result: no second array, no
  second node;
- the ONNX op it lowers to after the producer's own lowering (onnxruntime fuses Gemm/Conv +
  activation itself);
- its derivative as a function of its *output* y (relu' = [y > 0], sigmoid' = y (1 - y),
  tanh' = 1 - y^2), so the VJP needs only the fused node's output, as the unfused graph's
  activation VJP did.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..core.builder import Tensor
from ..core.errors import GraphError
from ..core.registry import epilogues, get_op


def check(activation: str | None, op: str) -> None:
    if activation is not None and activation not in epilogues():
        raise GraphError(f"{op}: unknown activation {activation!r}; graphdl fuses "
                         f"{sorted(epilogues())}")


def kernel(activation: str) -> Callable[[np.ndarray], np.ndarray]:
    """The activation applied in place to a fresh float array."""
    fn = get_op(activation).inplace
    return lambda y: fn(y, out=y)


def apply(y: np.ndarray, activation: str | None) -> np.ndarray:
    """The kernel's epilogue: ``y`` (the producer's fresh result) activated in place."""
    return y if activation is None else get_op(activation).inplace(y, out=y)


def pre_activation_grad(g: Tensor | None, y: Tensor, activation: str | None) -> Tensor | None:
    """d loss / d (the producer's result before the activation), from g = d loss / d y."""
    if g is None or activation is None:
        return g
    return g * get_op(activation).epilogue.derivative(y)


def lower(ctx: Any, node: Any, emit_producer: Callable[[Any], None]) -> None:
    """The producer's lowering into a fresh value, then the activation's ONNX op into the node's
    output; ``emit_producer(outputs)`` emits the producer writing ``outputs``."""
    act = node.attrs.get("activation")
    if act is None:
        emit_producer(node.outputs)
        return
    raw = ctx.fresh(f"{node.outputs[0].name}_pre")
    emit_producer([raw])
    ctx.emit(get_op(act).epilogue.onnx_op, [raw], node.outputs)
