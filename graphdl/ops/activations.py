"""Activations: ReLU, LeakyReLU, ELU, sigmoid, tanh, softmax and
log-softmax. ELU is the standard ``alpha * (exp(x) - 1)`` for x < 0 (a common misprint has
``exp(x - 1)``)."""
from __future__ import annotations

import numpy as np

from ..core.builder import Tensor
from ..core.registry import Call, Epilogue, OpDef, onnx_op, register
from ..core.types import TensorType
from .common import norm_axis, unary_infer
from .elementwise import cast, exp, where
from .reduce import reduce_sum
from .rows import max_keepdims, sum_keepdims


def _relu_vjp(b, c: Call, gys):
    """The backprop's delta * f'(a) with f'(a) = [a > 0] = [relu(a) > 0]: a multiply, which both
    engines run several times faster than a select (onnxruntime's Where is ~8x its Mul); read
    from the output, so the pre-activation can die at the ReLU (which then runs in place)."""
    y = c.outputs[0]
    return [gys[0] * cast(y > 0.0, y.dtype)]


def _leaky_kernel(x: np.ndarray, *, alpha: float) -> np.ndarray:
    return np.where(x > 0, x, x * x.dtype.type(alpha))


def _leaky_vjp(b, c: Call, gys):
    x, g = c.inputs[0], gys[0]
    return [where(x > 0.0, g, g * c.attrs["alpha"])]


def _leaky_lower(ctx, node) -> None:
    """ONNX LeakyRelu, except in float64 (no onnxruntime kernel): ``where(x > 0, x, alpha x)``."""
    x, alpha = node.inputs[0], node.attrs["alpha"]
    if x.type.dtype.np != np.float64:
        ctx.emit("LeakyRelu", node.inputs, node.outputs, alpha=alpha)
        return
    (scaled,) = ctx.emit("Mul", [x, ctx.const(np.asarray(alpha, np.float64))])
    (pos,) = ctx.emit("Greater", [x, ctx.const(np.zeros((), np.float64))])
    ctx.emit("Where", [pos, x, scaled], node.outputs)


def _elu_kernel(x: np.ndarray, *, alpha: float) -> np.ndarray:
    a = x.dtype.type(alpha)
    return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))


def _elu_vjp(b, c: Call, gys):
    """dy/dx = 1 for x > 0, else alpha * exp(x) = y + alpha."""
    x, y, g = c.inputs[0], c.outputs[0], gys[0]
    return [where(x > 0.0, g, g * (y + c.attrs["alpha"]))]


def _elu_lower(ctx, node) -> None:
    """ONNX Elu, except in float64, which stock onnxruntime has no Elu kernel for:
    there ``where(x > 0, x, alpha * (exp(min(x, 0)) - 1))`` from ops that have one."""
    x, alpha = node.inputs[0], node.attrs["alpha"]
    if x.type.dtype.np != np.float64:
        ctx.emit("Elu", node.inputs, node.outputs, alpha=alpha)
        return
    zero, one = ctx.const(np.zeros((), np.float64)), ctx.const(np.ones((), np.float64))
    (neg,) = ctx.emit("Min", [x, zero])
    (em1,) = ctx.emit("Sub", [ctx.emit("Exp", [neg])[0], one])
    (scaled,) = ctx.emit("Mul", [em1, ctx.const(np.asarray(alpha, np.float64))])
    (pos,) = ctx.emit("Greater", [x, zero])
    ctx.emit("Where", [pos, x, scaled], node.outputs)


def _sigmoid_kernel(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``: within an ulp everywhere (no cancellation in either tail); where
    exp(-x) overflows the result is its limit 0 (below float32's normal range). Twice as fast
    as the two-branch form, which matters in the LSTM's gates."""
    with np.errstate(over="ignore"):
        e = np.asarray(np.exp(np.negative(x)))  # asarray: 0-d input gives a numpy scalar
    e += x.dtype.type(1)
    return np.reciprocal(e, out=e)


def _sigmoid_vjp(b, c: Call, gys):
    y = c.outputs[0]
    return [gys[0] * y * (1.0 - y)]


def _tanh_vjp(b, c: Call, gys):
    y = c.outputs[0]
    return [gys[0] * (1.0 - y * y)]


def _relu_inplace(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(x, x.dtype.type(0), out=out)


def _sigmoid_inplace(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """0.5 * (1 + tanh(x / 2)): stable for any x and evaluable in place."""
    y = np.multiply(x, x.dtype.type(0.5), out=out)
    np.tanh(y, out=y)
    np.add(y, y.dtype.type(1), out=y)
    return np.multiply(y, y.dtype.type(0.5), out=y)


# As gemm's and conv's epilogues, each activation's derivative in terms of its output y.
_RELU_EPILOGUE = Epilogue("Relu", lambda y: cast(y > 0.0, y.dtype))
_SIGMOID_EPILOGUE = Epilogue("Sigmoid", lambda y: y * (1.0 - y))
_TANH_EPILOGUE = Epilogue("Tanh", lambda y: 1.0 - y * y)

register(OpDef("relu", unary_infer, (1, 1), kernel=lambda x: np.maximum(x, x.dtype.type(0)),
               lower=onnx_op("Relu"), vjp=_relu_vjp, traits={"elementwise"},
               inplace=_relu_inplace, fresh=True, epilogue=_RELU_EPILOGUE))
register(OpDef("leaky_relu", unary_infer, (1, 1), kernel=_leaky_kernel,
               lower=_leaky_lower, vjp=_leaky_vjp, attrs={"alpha": 0.01},
               traits={"elementwise"}, fresh=True))
register(OpDef("elu", unary_infer, (1, 1), kernel=_elu_kernel, lower=_elu_lower,
               vjp=_elu_vjp, attrs={"alpha": 1.0}, traits={"elementwise"}, fresh=True))
register(OpDef("sigmoid", unary_infer, (1, 1), kernel=_sigmoid_kernel, lower=onnx_op("Sigmoid"),
               vjp=_sigmoid_vjp, traits={"elementwise"}, inplace=_sigmoid_inplace, fresh=True,
               epilogue=_SIGMOID_EPILOGUE))
register(OpDef("tanh", unary_infer, (1, 1), kernel=np.tanh, lower=onnx_op("Tanh"),
               vjp=_tanh_vjp, traits={"elementwise"}, inplace=np.tanh, fresh=True,
               epilogue=_TANH_EPILOGUE))


def relu(x: Tensor) -> Tensor:
    return x.b.apply1("relu", [x])


def leaky_relu(x: Tensor, alpha: float = 0.01) -> Tensor:
    """x for x > 0, else alpha * x (LeakyReLU, slope 0.01 by default)."""
    return x.b.apply1("leaky_relu", [x], alpha=float(alpha))


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, else alpha * (exp(x) - 1)."""
    return x.b.apply1("elu", [x], alpha=float(alpha))


def sigmoid(x: Tensor) -> Tensor:
    return x.b.apply1("sigmoid", [x])


def tanh(x: Tensor) -> Tensor:
    return x.b.apply1("tanh", [x])


# -- softmax family ----------------------------------------------------------------------------


def _softmax_infer(types: list, attrs: dict) -> list[TensorType]:
    out = unary_infer(types, attrs)
    norm_axis(attrs["axis"], types[0].rank, "softmax axis")
    return out


def _softmax_kernel(x: np.ndarray, *, axis: int) -> np.ndarray:
    e = np.asarray(np.subtract(x, max_keepdims(x, axis)))
    np.exp(e, out=e)  # in place on the fresh difference: one array allocated, not three
    e /= sum_keepdims(e, axis)
    return e


def log_softmax_kernel(x: np.ndarray, *, axis: int) -> np.ndarray:
    z = x - max_keepdims(x, axis)
    return z - np.log(sum_keepdims(np.exp(z), axis))


def _softmax_vjp(b, c: Call, gys):
    """dx = y * (g - sum(g * y))."""
    y, g, axis = c.outputs[0], gys[0], c.attrs["axis"]
    return [y * (g - reduce_sum(g * y, axis, keepdims=True))]


def _log_softmax_vjp(b, c: Call, gys):
    """dx = g - softmax(x) * sum(g)."""
    y, g, axis = c.outputs[0], gys[0], c.attrs["axis"]
    return [g - exp(y) * reduce_sum(g, axis, keepdims=True)]


register(OpDef("softmax", _softmax_infer, (1, 1), kernel=_softmax_kernel,
               lower=onnx_op("Softmax"), vjp=_softmax_vjp, attrs={"axis": -1}, fresh=True))
register(OpDef("log_softmax", _softmax_infer, (1, 1), kernel=log_softmax_kernel,
               lower=onnx_op("LogSoftmax"), vjp=_log_softmax_vjp, attrs={"axis": -1},
               fresh=True))


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.b.apply1("softmax", [x], axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.b.apply1("log_softmax", [x], axis=axis)
