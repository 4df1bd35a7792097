"""The floor under an exported step's time in onnxruntime: its matrix products and
convolutions alone, as they run inside the step.

Most of what export decides (which elementwise ops, how many passes over memory, how data is
laid out for the products) leaves the products themselves alone: their shapes are the
model's, their speed is onnxruntime's kernels'. :func:`products_seconds` is the time the
step's product nodes take in one run of the step, from onnxruntime's profiler
(graphdl.tools.profiling): what the step would take if everything else were free. The
realistic benchmark (``bench_realistic``) sets it beside PyTorch eager's whole step: where
this floor alone is at or above a target ratio, no change outside the products can reach the
target; it needs faster product kernels, or products of other shapes (another lowering of the
weight gradient, for instance: ``benchmarks/bench_conv_grads.py`` times those).

Inside the step, not cut out: products timed on their own, on inputs fed from outside, read
them from memory where in the step the op before has just written them into the cache (the
ResNet step's weight-gradient products took 34 ms that way against 20 ms in the step).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

#: onnxruntime's kernels that are matrix products or convolutions (after its fusions, which
#: fold a bias, a transpose or an activation into some of them)
PRODUCT_KERNELS = ("MatMul", "FusedMatMul", "Gemm", "FusedGemm", "Conv", "FusedConv",
                   "ConvTranspose")


@dataclass(frozen=True)
class Fixed:
    """A contender's time per step measured once by other means than calling it (the
    harness takes it as every round's time)."""

    seconds: float


def product_nodes(prof: Any) -> list[Any]:
    """The nodes of a graphdl.tools.profiling Profile that run product kernels."""
    return [n for n in prof.nodes if n.op in PRODUCT_KERNELS]


def products_seconds(step: Any, feeds: Mapping[str, np.ndarray], runs: int = 5) -> float:
    """Seconds per run that a TrainStep's exported product nodes take in onnxruntime, one
    thread, from its initial state on the batch ``feeds`` (the median run of each node)."""
    from graphdl.onnx.opsets import installed_ort_target
    from graphdl.tools.profiling import profile

    model = step.to_onnx(target=installed_ort_target())  # as OrtRunner exports it
    prof = profile(model, {**step.initial, **step.hyperparam_feeds(), **feeds}, backend="ort",
                   runs=runs, threads=1)
    return sum(n.seconds for n in product_nodes(prof))


def step_floor(step: Any, feeds: Mapping[str, np.ndarray]) -> Fixed:
    """The floor contender of a realistic-benchmark case."""
    return Fixed(products_seconds(step, feeds))
