"""Sample rows for the table-driven op tests: one module per op family, each a list SAMPLES.

A row gives an op, its input arrays and attrs; tests/test_ops_table.py derives from every row:
the inferred type equals the kernel's output, the VJP equals central finite differences (float64),
second order for smooth ops, and onnxruntime equals the interpreter on the exported op.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class Sample:
    op: str
    inputs: list[np.ndarray | None]
    attrs: dict[str, Any] = field(default_factory=dict)
    #: indices of inputs that become constants (default: every non-float input), so that shape
    #: vectors and indices are known at build time as in real graphs
    const: tuple[int, ...] | None = None
    #: check the VJP against finite differences (ops whose output is smooth in the float inputs)
    grad: bool = True
    #: also check the VJP of the VJP (smooth ops)
    second_order: bool = False
    #: compare the interpreter with onnxruntime; "f32" runs that comparison in float32 (for ops
    #: whose float64 kernel onnxruntime lacks)
    ort: bool | str = True
    rtol: float = 1e-6
    atol: float = 1e-7
    label: str = ""
    #: the lowest opset the op's ONNX lowering exists at (below it export refuses clearly)
    min_opset: int = 0

    def const_inputs(self) -> tuple[int, ...]:
        if self.const is not None:
            return self.const
        return tuple(i for i, a in enumerate(self.inputs)
                     if a is not None and a.dtype.kind != "f")

    @property
    def id(self) -> str:
        shapes = "x".join(str(list(a.shape)) if a is not None else "_" for a in self.inputs)
        return f"{self.op}-{self.label or shapes}"


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def randn(*shape: int, seed: int = 0) -> np.ndarray:
    return rng(seed).standard_normal(shape)


def away_from_zero(*shape: int, seed: int = 0, margin: float = 0.1) -> np.ndarray:
    """Random values with |x| >= margin, so kinks (relu, abs) are not hit by finite differences."""
    x = randn(*shape, seed=seed)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-12) * margin, x)


def assert_same(got: Any, want: Any, **tol: Any) -> None:
    """assert_allclose for numbers; exact equality for strings (and other non-numeric arrays)."""
    if np.asarray(want).dtype.kind in "OUS":
        np.testing.assert_array_equal(got, want, err_msg=tol.get("err_msg", ""))
        return
    np.testing.assert_allclose(got, want, **tol)


def fits(inferred: tuple, actual: tuple) -> bool:
    """Whether a kernel's output shape fits the inferred one (an unknown dim, None, fits any
    size: the data-dependent length of string_normalizer, say)."""
    return len(inferred) == len(actual) and all(
        d is None or d == a for d, a in zip(inferred, actual))


def all_samples() -> list[Sample]:
    out: list[Sample] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        out.extend(mod.SAMPLES)
    return out
