"""Batch normalisation with the batch's own statistics, as one op with a closed-form VJP.

``batch_norm_core(x, gamma, beta)`` gives ``y = gamma * (x - mean) * inv + beta`` with
``inv = 1 / sqrt(var + eps)``, mean and biased variance over every axis but the channels
(axis 1). It also outputs ``centred = x - mean``, inv (kept dims), mean and var ([C]):
for the running statistics (:mod:`.normalization`'s ``batch_norm_train``) and for its own
VJP (the NumPy kernel: the sums as einsums, then centred, and y scaled and shifted in
place). The ONNX export is the decomposition: the statistics by reductions, y by the
inference ``BatchNormalization`` on them. Not ``BatchNormalization`` in training mode
(opset 14), although that would take four nodes fewer: onnxruntime's CUDA provider runs
training mode only when the op has opset 9's five outputs, and with opset 14's three it
silently normalises by the given running statistics instead.

The VJP is the textbook closed form, with ``a = gamma * inv`` and ``xhat = centred * inv``::

    dbeta = sum(dy)     dgamma = sum(dy * xhat) = inv * sum(dy * centred)
    dx = a * (dy - mean(dy) - xhat * mean(dy * xhat))
       = (dy * a - a * mean(dy)) - centred * (a * inv^2 * mean(dy * centred))

the means being dbeta / n and sum(dy * centred) / n: four full-size elementwise passes and two
reductions (the means as reductions of their own would be two more), where differentiating the
decomposition builds a dozen passes (through the mean, the centring, the variance and the
square root in turn). It is a composite: engines without a kernel for it (the ONNX export) run
the decomposition.
"""
from __future__ import annotations

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import Call, OpDef, register
from ..core.types import TensorType, dims_equal, shape_str
from .common import need_float, same_dtype
from .elementwise import sqrt
from .reduce import reduced_count, reduce_mean, reduce_sum
from .shape import squeeze, unsqueeze, zeros_like


def check_inputs(types: list, n_vectors: int) -> TensorType:
    """x (N, C, ...) of a float dtype and ``n_vectors`` per-channel [C] inputs after it."""
    x = types[0]
    same_dtype(types, "batch_norm inputs")
    need_float(x, "batch_norm input")
    if x.shape is None:
        return x
    if len(x.shape) < 2:
        raise ShapeError(f"batch_norm needs (N, C, ...) input, got {shape_str(x.shape)}")
    c = x.shape[1]
    for t in types[1:1 + n_vectors]:
        if t.shape is not None and (len(t.shape) != 1 or dims_equal(t.shape[0], c) is False):
            raise ShapeError(f"batch_norm: per-channel inputs must be [{c}] for input "
                             f"{shape_str(x.shape)}, got {shape_str(t.shape)}")
    return x


def stat_axes(x: Tensor) -> tuple[int, ...]:
    return (0,) + tuple(range(2, x.type.rank))


def per_channel(v: Tensor, x: Tensor) -> Tensor:
    """A [C] vector shaped to broadcast against x: [C] for (N, C), [C, 1, 1] for NCHW."""
    extra = tuple(range(1, x.type.rank - 1))
    return unsqueeze(v, extra) if extra else v


def batch_stats(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """x's per-channel batch mean and biased variance (kept dims: they broadcast against x),
    and x - mean."""
    axes = stat_axes(x)
    mean = reduce_mean(x, axes, keepdims=True)
    centred = x - mean
    return mean, reduce_mean(centred * centred, axes, keepdims=True), centred


def _infer(types: list, attrs: dict) -> list[TensorType]:
    x = check_inputs(types, 2)
    stat = None if x.shape is None else (1, x.shape[1]) + (1,) * (len(x.shape) - 2)
    vec = None if x.shape is None else (x.shape[1],)
    return [TensorType(x.dtype, x.shape)] * 2 + [TensorType(x.dtype, stat)] + \
        [TensorType(x.dtype, vec)] * 2


def _kernel(x, gamma, beta, *, eps):
    """y, centred, inv (kept dims), mean and var ([C]). The sums as einsums over x viewed as
    [N, C, pixels] (no squares array: the variance is one pass over centred, where squaring
    and averaging took two), then y = centred * (gamma * inv) + beta in place: three full
    passes after the centring."""
    n, c = x.shape[:2]
    shape = (1, c) + (1,) * (x.ndim - 2)
    flat = x.reshape(n, c, -1)
    count = n * flat.shape[2]  # 0 for an empty batch: NaN statistics, as a mean would give
    mean = np.einsum("ncp->c", flat) / x.dtype.type(count)
    centred = x - mean.reshape(shape)
    cf = centred.reshape(n, c, -1)
    var = np.einsum("ncp,ncp->c", cf, cf) / x.dtype.type(count)
    inv = (1.0 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype).reshape(shape)
    y = np.multiply(centred, inv * gamma.reshape(shape))
    y += beta.reshape(shape)
    return y, centred, inv, mean, var


def _decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    """The statistics by reductions; y by the inference batch norm on them (ONNX
    BatchNormalization: one pass over x where a scale and a shift take two)."""
    x, gamma, beta = ins
    mean, var, centred = batch_stats(x)
    inv = 1.0 / sqrt(var + attrs["eps"])
    axes = stat_axes(x)
    mean, var = squeeze(mean, axes), squeeze(var, axes)
    y = b.apply1("batch_norm", [x, gamma, beta, mean, var], eps=attrs["eps"])
    return [y, centred, inv, mean, var]


def _vjp(b, c: Call, gys):
    """The closed form of the module docstring when only y's gradient flows (training);
    otherwise :func:`_general_grad`."""
    x, gamma = c.inputs[:2]
    _, centred, inv = c.outputs[:3]
    gy = gys[0]
    axes, g_pc = stat_axes(x), per_channel(gamma, x)
    if any(g is not None for g in gys[1:]):
        prod = None if gy is None else gy * centred
        dgamma, dbeta = (None, None) if gy is None else \
            (reduce_sum(prod, axes) * squeeze(inv, axes), reduce_sum(gy, axes))
        return [_general_grad(x, centred, inv, g_pc, prod, gys, axes), dgamma, dbeta]
    if gy is None:
        return [None, None, None]
    return _closed_form(x, gy, centred, inv, g_pc, axes)


def _closed_form(x, gy, centred, inv, g_pc, axes):
    """[dx, dgamma, dbeta] with the two sums dbeta and sum(dy * centred) doubling as the two
    means (over n, the reduced count): two reductions, where the means took two more, and
    per-channel factors folded first, so dx = (dy * a - shift) - centred * slope."""
    a = g_pc * inv
    s_dy = reduce_sum(gy, axes, keepdims=True)
    s_prod = reduce_sum(gy * centred, axes, keepdims=True)
    a_n = a / reduced_count(x, axes)
    shift, slope = a_n * s_dy, a_n * inv * inv * s_prod
    dx = (gy * a - shift) - centred * slope
    return [dx, squeeze(s_prod * inv, axes), squeeze(s_dy, axes)]


def _general_grad(x, centred, inv, g_pc, prod, gys, axes):
    """dx by the chain x -> mean -> centred = x - mean -> var = mean(centred^2) -> inv, with
    y = centred * gamma * inv + beta: centred's total cotangent T (direct, through y, through
    var), then the centring's VJP T - mean(T), plus the mean output's g_mean / n."""
    gy, g_centred, g_inv, g_mean, g_var = gys
    g_mean, g_var = [None if g is None else per_channel(g, x) for g in (g_mean, g_var)]
    n = reduced_count(x, axes)
    t = None if gy is None else gy * (g_pc * inv)
    t = g_centred if t is None else (t if g_centred is None else t + g_centred)
    g_i = None if gy is None else reduce_sum(prod, axes, keepdims=True) * g_pc
    g_i = g_inv if g_i is None else (g_i if g_inv is None else g_i + g_inv)
    if g_i is not None:
        d_var = g_i * (inv * inv * inv * -0.5)
        g_var = d_var if g_var is None else g_var + d_var
    if g_var is not None:
        via_var = centred * (g_var * 2.0 / n)
        t = via_var if t is None else t + via_var
    dx = zeros_like(x) if t is None else t - reduce_mean(t, axes, keepdims=True)
    return dx if g_mean is None else dx + g_mean / n


register(OpDef("batch_norm_core", _infer, (3, 3), kernel=_kernel, vjp=_vjp,
               decompose=_decompose, attrs={"eps": 1e-5}, traits={"composite"},
               doc="gamma * (x - mean) / sqrt(var + eps) + beta with batch statistics over all "
                   "axes but 1; outputs y, x - mean, 1 / sqrt(var + eps) (kept dims), mean and "
                   "var ([C])."))


def batch_norm_core(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(y, x - mean, 1 / sqrt(var + eps), mean, var) with the batch's per-channel (axis 1)
    mean and biased variance; inv keeps its dims (it broadcasts against x), mean and var are
    [C] vectors."""
    y, centred, inv, mean, var = x.b.apply("batch_norm_core", [x, gamma, beta], eps=float(eps))
    return y, centred, inv, mean, var
