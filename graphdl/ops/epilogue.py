"""Activation epilogues: an activation applied to a producer op's result in place.

``gemm`` and ``conv`` take an ``activation`` attribute (None, "relu", "sigmoid" or "tanh"),
which the fusion pass (``passes/fusion.py``, ActivationFusion) sets when the activation is the
only reader of their result. Each activation here has, in one row:

- an in-place kernel on the producer's fresh result (no second array, no second node);
- the ONNX op it lowers to after the producer's own lowering (onnxruntime fuses Gemm/Conv +
  activation itself);
- its derivative as a function of its *output* y (relu' = [y > 0], sigmoid' = y (1 - y),
  tanh' = 1 - y^2), so the VJP needs only the fused node's output, as the unfused graph's
  activation VJP did.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from ..core.builder import Tensor
from ..core.errors import GraphError
from .elementwise import cast
from .fused import UFUNCS


def _in_place(op: str) -> Callable[[np.ndarray], np.ndarray]:
    """The fused body's in-place kernel of ``op`` (graphdl/ops/fused.py), writing into y."""
    fn = UFUNCS[op]
    return lambda y: fn(y, out=y)


class Activation(NamedTuple):
    kernel: Callable[[np.ndarray], np.ndarray]  # in place on a fresh float array
    onnx_op: str
    derivative: Callable[[Tensor], Tensor]  # f'(a) written in terms of y = f(a)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(_in_place("relu"), "Relu", lambda y: cast(y > 0.0, y.dtype)),
    "sigmoid": Activation(_in_place("sigmoid"), "Sigmoid", lambda y: y * (1.0 - y)),
    "tanh": Activation(_in_place("tanh"), "Tanh", lambda y: 1.0 - y * y),
}


def check(activation: str | None, op: str) -> None:
    if activation is not None and activation not in ACTIVATIONS:
        raise GraphError(f"{op}: unknown activation {activation!r}; graphdl fuses "
                         f"{sorted(ACTIVATIONS)}")


def apply(y: np.ndarray, activation: str | None) -> np.ndarray:
    """The kernel's epilogue: ``y`` (the producer's fresh result) activated in place."""
    return y if activation is None else ACTIVATIONS[activation].kernel(y)


def pre_activation_grad(g: Tensor | None, y: Tensor, activation: str | None) -> Tensor | None:
    """d loss / d (the producer's result before the activation), from g = d loss / d y."""
    if g is None or activation is None:
        return g
    return g * ACTIVATIONS[activation].derivative(y)


def lower(ctx: Any, node: Any, emit_producer: Callable[[Any], None]) -> None:
    """The producer's lowering into a fresh value, then the activation's ONNX op into the node's
    output; ``emit_producer(outputs)`` emits the producer writing ``outputs``."""
    act = node.attrs.get("activation")
    if act is None:
        emit_producer(node.outputs)
        return
    raw = ctx.fresh(f"{node.outputs[0].name}_pre")
    emit_producer([raw])
    ctx.emit(ACTIVATIONS[act].onnx_op, [raw], node.outputs)
