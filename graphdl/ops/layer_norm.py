"""Layer normalisation (ONNX LayerNormalization, opset 17) and RMS normalisation (ONNX
RMSNormalization, opset 23): statistics over the trailing axes from ``axis`` on, per row.

Both are composites: autodiff differentiates their decompositions (reductions and elementwise
ops); the kernels and the fused ONNX ops serve the forward pass. layer_norm's second and third
outputs are ONNX's optional Mean and InvStdDev (the trailing axes kept as 1s)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.types import TensorType, broadcast_shapes
from ..core.registry import OpDef, register
from .common import need_float, norm_axis, same_dtype
from .elementwise import reciprocal, sqrt
from .reduce import reduce_mean

#: the first opsets with the fused ONNX ops
LAYER_NORM_OPSET = 17
RMS_NORM_OPSET = 23


def _trailing(rank: int, axis: int) -> tuple[int, ...]:
    return tuple(range(norm_axis(axis, rank, "normalization axis"), rank))


def _norm_infer(types: list, attrs: dict, outputs: int) -> list[TensorType]:
    x = types[0]
    need_float(x)
    same_dtype(types, "x, scale and bias")
    if x.shape is None:
        return [TensorType(x.dtype, None)] * outputs
    axes = _trailing(len(x.shape), attrs["axis"])
    for what, t in zip(("scale", "bias"), types[1:]):
        if t is not None and t.shape is not None:
            try:
                broadcast_shapes(x.shape[axes[0]:] if axes else (), t.shape)
            except ShapeError:
                raise ShapeError(f"{what} {list(t.shape)} does not broadcast to the normalized "
                                 f"dims {list(x.shape[axes[0]:])}") from None
    stats = TensorType(x.dtype, tuple(1 if i in axes else d for i, d in enumerate(x.shape)))
    return [TensorType(x.dtype, x.shape)] + [stats] * (outputs - 1)


def _stats(x: np.ndarray, axis: int, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mean, x - mean, 1 / sqrt(var + eps) over the trailing axes."""
    axes = _trailing(x.ndim, axis)
    mean = np.mean(x, axis=axes, keepdims=True)
    d = x - mean
    inv = np.reciprocal(np.sqrt(np.mean(d * d, axis=axes, keepdims=True) + x.dtype.type(eps)))
    return mean, d, inv


def _layer_norm_kernel(x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None = None, *,
                       axis: int, eps: float) -> tuple[np.ndarray, ...]:
    mean, d, inv = _stats(x, axis, eps)
    y = d * inv * scale
    if bias is not None:
        y += bias
    return y, mean, inv


def _layer_norm_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    x, scale, bias = (list(ins) + [None])[:3]
    axes = _trailing(x.type.rank, attrs["axis"])
    mean = reduce_mean(x, axes, keepdims=True)
    d = x - mean
    inv = reciprocal(sqrt(reduce_mean(d * d, axes, keepdims=True) + attrs["eps"]))
    y = d * inv * scale
    return [y + bias if bias is not None else y, mean, inv]


def _layer_norm_lower(ctx, node) -> None:
    """ONNX LayerNormalization from opset 17, its unread statistics left off; else, and for
    float64 statistics (onnxruntime has no kernel with a float64 stash type), the
    decomposition."""
    outs = [o if k == 0 or o.name not in ctx.unread else "" for k, o in enumerate(node.outputs)]
    while outs[-1] == "":
        outs.pop()
    f64_stats = len(outs) > 1 and node.inputs[0].type.dtype.np == np.float64
    if ctx.opset < LAYER_NORM_OPSET or f64_stats:
        ctx.emit_decomposition(node)
        return
    ins = list(node.inputs)
    while ins[-1] is None:
        ins.pop()
    ctx.emit("LayerNormalization", ins, outs, axis=node.attrs["axis"],
             epsilon=node.attrs["eps"])


register(OpDef("layer_norm", lambda t, a: _norm_infer(t, a, 3), (2, 3),
               slots={1: "scale", 2: "shift"},
               kernel=_layer_norm_kernel, lower=_layer_norm_lower,
               decompose=_layer_norm_decompose, attrs={"axis": -1, "eps": 1e-5},
               traits={"composite"},
               doc="(x - mean) / sqrt(var + eps) * scale + bias over the axes from axis on; "
                   "also the mean and 1/sqrt(var + eps)."))


def _rms_norm_kernel(x: np.ndarray, scale: np.ndarray, *, axis: int, eps: float) -> np.ndarray:
    axes = _trailing(x.ndim, axis)
    ms = np.mean(x * x, axis=axes, keepdims=True) + x.dtype.type(eps)
    return x * np.reciprocal(np.sqrt(ms)) * scale


def _rms_norm_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    x, scale = ins
    axes = _trailing(x.type.rank, attrs["axis"])
    return [x * reciprocal(sqrt(reduce_mean(x * x, axes, keepdims=True) + attrs["eps"]))
            * scale]


def _rms_norm_lower(ctx, node) -> None:
    """ONNX RMSNormalization from opset 23; else the decomposition."""
    if ctx.opset < RMS_NORM_OPSET:
        ctx.emit_decomposition(node)
        return
    ctx.emit("RMSNormalization", node.inputs, node.outputs, axis=node.attrs["axis"],
             epsilon=node.attrs["eps"])


register(OpDef("rms_norm", lambda t, a: _norm_infer(t, a, 1), (2, 2), kernel=_rms_norm_kernel,
               slots={1: "scale"},
               lower=_rms_norm_lower, decompose=_rms_norm_decompose,
               attrs={"axis": -1, "eps": 1e-5}, traits={"composite"},
               doc="x / sqrt(mean(x^2) + eps) * scale over the axes from axis on."))


def layer_norm(x: Tensor, scale: Tensor, bias: Tensor | None = None, axis: int = -1,
               eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the axes from ``axis`` on (the output only)."""
    return x.b.apply("layer_norm", [x, scale, bias], axis=axis, eps=float(eps))[0]


def layer_norm_stats(x: Tensor, scale: Tensor, bias: Tensor | None = None, axis: int = -1,
                     eps: float = 1e-5) -> Sequence[Tensor]:
    """The output, the mean and 1 / sqrt(var + eps) (ONNX's three outputs)."""
    return x.b.apply("layer_norm", [x, scale, bias], axis=axis, eps=float(eps))


def rms_norm(x: Tensor, scale: Tensor, axis: int = -1, eps: float = 1e-5) -> Tensor:
    """RMS normalisation over the axes from ``axis`` on (LLaMA-style blocks)."""
    return x.b.apply1("rms_norm", [x, scale], axis=axis, eps=float(eps))
