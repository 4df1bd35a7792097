"""Elementwise special functions the modern architectures need: erf (the exact GELU), sin and
cos (sinusoidal position encodings)."""
from __future__ import annotations

import math

import numpy as np

from ..core.builder import Tensor
from ..core.registry import Call, OpDef, onnx_op, register
from .common import unary_infer
from .elementwise import exp

try:  # scipy ships with scikit-learn; without it, math.erf one element at a time
    from scipy.special import erf as _scipy_erf
except ImportError:  # pragma: no cover - scipy is installed wherever scikit-learn is
    _scipy_erf = None

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def erf_kernel(x: np.ndarray) -> np.ndarray:
    if _scipy_erf is not None:
        return np.asarray(_scipy_erf(x), x.dtype)
    return np.vectorize(math.erf, otypes=[x.dtype])(x)


def _erf_vjp(b, c: Call, gys):
    """d erf(x) / dx = 2 / sqrt(pi) * exp(-x^2)."""
    x = c.inputs[0]
    return [gys[0] * (exp(-(x * x)) * _TWO_OVER_SQRT_PI)]


def _sin_vjp(b, c: Call, gys):
    return [gys[0] * cos(c.inputs[0])]


def _cos_vjp(b, c: Call, gys):
    return [-(gys[0] * sin(c.inputs[0]))]


register(OpDef("erf", unary_infer, (1, 1), kernel=erf_kernel, lower=onnx_op("Erf"),
               vjp=_erf_vjp, traits={"elementwise"}))
register(OpDef("sin", unary_infer, (1, 1), kernel=np.sin, lower=onnx_op("Sin"), vjp=_sin_vjp,
               traits={"elementwise"}))
register(OpDef("cos", unary_infer, (1, 1), kernel=np.cos, lower=onnx_op("Cos"), vjp=_cos_vjp,
               traits={"elementwise"}))


def erf(x: Tensor) -> Tensor:
    """The error function, 2 / sqrt(pi) * integral of exp(-t^2) from 0 to x."""
    return x.b.apply1("erf", [x])


def sin(x: Tensor) -> Tensor:
    return x.b.apply1("sin", [x])


def cos(x: Tensor) -> Tensor:
    return x.b.apply1("cos", [x])
