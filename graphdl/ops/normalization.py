"""Batch normalisation, channels on axis 1: (N, C) or (N, C, H, W).

- ``batch_norm`` (inference) normalises with given population statistics; it lowers to ONNX
  ``BatchNormalization`` and takes its kernel and gradient from its decomposition.
- ``batch_norm_train`` normalises with the batch's own mean and (biased) variance and also
  outputs the running statistics updated with ``momentum`` as PyTorch does:
  ``new = (1 - momentum) * old + momentum * batch``, the variance unbiased (n / (n - 1)) unless
  ``unbiased=False`` (ONNX BatchNormalization's training mode uses the biased one). It is a
  composite of ``batch_norm_core`` (:mod:`.batch_norm_core`: the normalisation with its
  closed-form VJP) and the running-statistics update, so it exports as plain ops.
"""
from __future__ import annotations

from typing import Any

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import OpDef, register
from ..core.types import TensorType
from .batch_norm_core import batch_norm_core, check_inputs as _check, per_channel as _per_channel, \
    stat_axes as _stat_axes
from .batch_norm_core import batch_stats  # noqa: F401 - importers take it from here
from .elementwise import maximum, sqrt
from .reduce import reduced_count

_ATTRS = {"eps": 1e-5}


def _infer(types: list, attrs: dict) -> list[TensorType]:
    x = _check(types, 4)
    return [TensorType(x.dtype, x.shape)]


def _train_infer(types: list, attrs: dict) -> list[TensorType]:
    x = _check(types, 4)
    if not 0.0 <= attrs["momentum"] <= 1.0:
        raise ShapeError(f"batch_norm_train momentum must be in [0, 1], got {attrs['momentum']}")
    return [TensorType(x.dtype, x.shape), types[3], types[4]]


def _normalise(x: Tensor, mean: Tensor, var: Tensor, gamma: Tensor, beta: Tensor,
               eps: float) -> Tensor:
    inv = 1.0 / sqrt(var + eps)
    return (x - mean) * inv * _per_channel(gamma, x) + _per_channel(beta, x)


def _decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    x, gamma, beta, mean, var = ins
    return [_normalise(x, _per_channel(mean, x), _per_channel(var, x), gamma, beta,
                       attrs["eps"])]


def _train_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    x, gamma, beta, run_mean, run_var = ins
    axes, m = _stat_axes(x), attrs["momentum"]
    y, _, _, mean, var = batch_norm_core(x, gamma, beta, attrs["eps"])
    batch_var = var
    if attrs["unbiased"]:
        n = reduced_count(x, axes)
        batch_var = batch_var * (n / maximum(n - 1.0, 1.0))  # a batch of 1 gives 0, not NaN
    new_mean = run_mean * (1.0 - m) + mean * m
    new_var = run_var * (1.0 - m) + batch_var * m
    return [y, new_mean, new_var]


def _lower(ctx: Any, node: Any) -> None:
    ctx.emit("BatchNormalization", node.inputs, node.outputs, epsilon=node.attrs["eps"])


register(OpDef("batch_norm", _infer, (5, 5), lower=_lower, decompose=_decompose,
               slots={1: "scale", 2: "shift", 3: "running statistic",
                      4: "running statistic"},
               attrs=dict(_ATTRS), traits={"composite"},
               doc="Inference batch norm with population statistics (ONNX BatchNormalization)."))
register(OpDef("batch_norm_train", _train_infer, (5, 5), decompose=_train_decompose,
               slots={1: "scale", 2: "shift", 3: "running statistic",
                      4: "running statistic"},
               attrs={**_ATTRS, "momentum": 0.1, "unbiased": True}, traits={"composite"},
               carries=((3, 1), (4, 2)),  # running mean and variance -> their next values
               doc="Training batch norm: batch statistics, and updated running statistics."))


def batch_norm(x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, var: Tensor,
               eps: float = 1e-5) -> Tensor:
    """``gamma * (x - mean) / sqrt(var + eps) + beta`` per channel (axis 1)."""
    return x.b.apply1("batch_norm", [x, gamma, beta, mean, var], eps=float(eps))


def batch_norm_train(x: Tensor, gamma: Tensor, beta: Tensor, running_mean: Tensor,
                     running_var: Tensor, momentum: float = 0.1,
                     eps: float = 1e-5) -> tuple[Tensor, Tensor, Tensor]:
    """Batch-statistics normalisation; returns (y, new running mean, new running variance)."""
    y, m, v = x.b.apply("batch_norm_train", [x, gamma, beta, running_mean, running_var],
                        eps=float(eps), momentum=float(momentum))
    return y, m, v

