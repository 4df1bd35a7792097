"""The activations of transformers and mobile CNNs: GELU (exact, with erf, or its tanh
approximation), hard sigmoid and hard swish (MobileNetV3).

GELU and hard swish are composites: autodiff differentiates their decomposition, which is as
short as a hand-written rule; the kernels and the single ONNX ops serve the forward pass."""
from __future__ import annotations

import math

import numpy as np

from ..core.builder import Tensor
from ..core.errors import GraphError
from ..core.registry import Call, OpDef, register
from .activations import tanh
from .common import unary_infer
from .elementwise import cast, logical_and
from .special import erf_kernel, erf

_SQRT_HALF = math.sqrt(0.5)
_TANH_C = math.sqrt(2.0 / math.pi)
#: the first opset with ONNX Gelu; stock onnxruntime runs it in float32 (float64 has no Erf)
GELU_OPSET = 20


def _gelu_infer(types: list, attrs: dict) -> list:
    if attrs["approximate"] not in ("none", "tanh"):
        raise GraphError(f"gelu approximate must be 'none' or 'tanh', got "
                         f"{attrs['approximate']!r}")
    return unary_infer(types, attrs)


def _gelu_kernel(x: np.ndarray, *, approximate: str) -> np.ndarray:
    t = x.dtype.type
    if approximate == "tanh":
        inner = np.tanh(t(_TANH_C) * (x + t(0.044715) * x * x * x))
    else:
        inner = erf_kernel(x * t(_SQRT_HALF))
    return t(0.5) * x * (t(1) + inner)


def _gelu_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    """0.5 x (1 + erf(x / sqrt 2)), or 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    (x,) = ins
    if attrs["approximate"] == "tanh":
        inner = tanh((x + x * x * x * 0.044715) * _TANH_C)
    else:
        inner = erf(x * _SQRT_HALF)
    return [x * 0.5 * (inner + 1.0)]


def _gelu_lower(ctx, node) -> None:
    """ONNX Gelu from opset 20 on (not in float64: onnxruntime expands it to Erf, which has no
    float64 kernel); else the decomposition."""
    if ctx.opset >= GELU_OPSET and node.inputs[0].type.dtype.np != np.float64:
        ctx.emit("Gelu", node.inputs, node.outputs, approximate=node.attrs["approximate"])
    else:
        ctx.emit_decomposition(node)


register(OpDef("gelu", _gelu_infer, (1, 1), kernel=_gelu_kernel, lower=_gelu_lower,
               decompose=_gelu_decompose, attrs={"approximate": "none"},
               traits={"elementwise", "composite"},
               doc="x * Phi(x), Phi the standard normal CDF (or its tanh approximation)."))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit; ``approximate="tanh"`` for the GPT-2/BERT tanh form."""
    return x.b.apply1("gelu", [x], approximate=approximate)


# -- hard sigmoid and hard swish ---------------------------------------------------------------


def _hard_sigmoid_kernel(x: np.ndarray, *, alpha: float, beta: float) -> np.ndarray:
    t = x.dtype.type
    return np.clip(t(alpha) * x + t(beta), t(0), t(1))


def _hard_sigmoid_vjp(b, c: Call, gys):
    """alpha where 0 < alpha x + beta < 1, else 0; read from the output."""
    y = c.outputs[0]
    inside = cast(logical_and(y > 0.0, y < 1.0), y.dtype)
    return [gys[0] * inside * c.attrs["alpha"]]


def _hard_sigmoid_lower(ctx, node) -> None:
    """ONNX HardSigmoid; in float64 (no onnxruntime kernel) max(0, min(1, alpha x + beta))."""
    x, a = node.inputs[0], node.attrs
    if x.type.dtype.np != np.float64:
        ctx.emit("HardSigmoid", node.inputs, node.outputs, alpha=a["alpha"], beta=a["beta"])
        return
    (ax,) = ctx.emit("Mul", [x, ctx.const(np.asarray(a["alpha"], np.float64))])
    (lin,) = ctx.emit("Add", [ax, ctx.const(np.asarray(a["beta"], np.float64))])
    (hi,) = ctx.emit("Min", [lin, ctx.const(np.ones((), np.float64))])
    ctx.emit("Max", [hi, ctx.const(np.zeros((), np.float64))], node.outputs)


register(OpDef("hard_sigmoid", unary_infer, (1, 1), kernel=_hard_sigmoid_kernel,
               lower=_hard_sigmoid_lower, vjp=_hard_sigmoid_vjp,
               attrs={"alpha": 0.2, "beta": 0.5}, traits={"elementwise"}))


def _hard_swish_kernel(x: np.ndarray) -> np.ndarray:
    return x * _hard_sigmoid_kernel(x, alpha=1.0 / 6.0, beta=0.5)


def _hard_swish_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    (x,) = ins
    return [x * hard_sigmoid(x, 1.0 / 6.0, 0.5)]


def _hard_swish_lower(ctx, node) -> None:
    """ONNX HardSwish, except in float64 (no onnxruntime kernel): the decomposition."""
    if node.inputs[0].type.dtype.np != np.float64:
        ctx.emit("HardSwish", node.inputs, node.outputs)
    else:
        ctx.emit_decomposition(node)


register(OpDef("hard_swish", unary_infer, (1, 1), kernel=_hard_swish_kernel,
               lower=_hard_swish_lower, decompose=_hard_swish_decompose,
               traits={"elementwise", "composite"}, doc="x * hard_sigmoid(x, 1/6, 1/2)."))


def hard_sigmoid(x: Tensor, alpha: float = 0.2, beta: float = 0.5) -> Tensor:
    """max(0, min(1, alpha x + beta)) (ONNX's defaults; PyTorch's is alpha=1/6)."""
    return x.b.apply1("hard_sigmoid", [x], alpha=float(alpha), beta=float(beta))


def hard_swish(x: Tensor) -> Tensor:
    """x * relu6(x + 3) / 6 (MobileNetV3)."""
    return x.b.apply1("hard_swish", [x])

