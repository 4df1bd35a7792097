"""ONNX's ``Gradient`` (domain ai.onnx.preview.training) as a request node.

``gradient(y, x1, ..., xk)`` stands for (d y / d x1, ..., d y / d xk) with an implicit seed of
ones for y, as the ONNX op defines it. It has no kernel or lowering of its own: the backprop
graph is built by graphdl's autodiff pass, ``passes.expand_gradients(graph)`` (the library
never imports ``passes``; ``graphdl run`` and the other commands expand requests themselves).
Running or exporting a graph that still holds a request is an error that says so.
"""
from __future__ import annotations

from typing import Any

from ..core.errors import DTypeError, GradError, GraphError, OnnxError
from ..core.registry import OpDef, register
from ..core.types import TensorType

_EXPAND = ("a gradient request (ONNX Gradient) is turned into its backprop graph by "
           "passes.expand_gradients(graph) before it runs or exports; the graphdl command line "
           "does this itself")


def _infer(types: list, attrs: dict) -> list[TensorType]:
    y = types[0]
    if not y.dtype.is_float:
        raise DTypeError(f"gradient: y must be floating point, got {y.dtype.name}")
    for i, t in enumerate(types[1:], 1):
        if not t.dtype.is_float:
            raise DTypeError(f"gradient: input {i} has dtype {t.dtype.name}; only floating "
                             "point tensors have gradients")
    return [TensorType(t.dtype, t.shape) for t in types[1:]]


def _kernel(*args: Any, **attrs: Any) -> Any:
    raise GraphError(_EXPAND)


def _lower(ctx: Any, node: Any) -> None:
    raise OnnxError(f"{node.where()}: {_EXPAND}")


def _vjp(b: Any, c: Any, gys: Any) -> Any:
    raise GradError(_EXPAND)


register(OpDef("gradient", _infer, (2, 1 << 16), kernel=_kernel, lower=_lower, vjp=_vjp,
               doc="d y / d x_i for each x_i (ONNX Gradient), until passes.expand_gradients."))
