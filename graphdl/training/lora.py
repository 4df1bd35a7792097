"""Low-rank adapters (LoRA, Hu et al. 2021) on chosen MatMul/Gemm weights.

A target weight ``W`` [p, q] is read as ``W + scale * A @ B`` with new parameters ``A`` [p, r]
(small random values) and ``B`` [r, q] (zeros, so training starts from the model as it is);
only the adapters train. :func:`merge` folds trained adapters back into ``W``, so the exported
model has the original structure and size.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..core.builder import GraphBuilder, Tensor
from ..core.errors import GraphError
from ..core.ir import Graph, Node
from ..core.rewrite import rebuild
from .param_roles import parameter_roles

_TARGET_OPS = ("matmul", "gemm")


@dataclass(frozen=True)
class LoraSpec:
    """Rank-``rank`` adapters on the MatMul/Gemm weights matching ``targets`` (globs);
    ``alpha`` sets the scale ``alpha / rank`` (default: scale 1); ``seed`` draws ``A``."""

    rank: int
    targets: Sequence[str]
    alpha: float | None = None
    seed: int = 0

    @property
    def scale(self) -> float:
        return 1.0 if self.alpha is None else float(self.alpha) / self.rank


def lora_targets(graph: Graph, spec: LoraSpec) -> list[str]:
    """The 2-D MatMul/Gemm weights whose names match the spec's globs."""
    if spec.rank < 1:
        raise GraphError(f"--lora rank must be a positive integer, got {spec.rank}")
    roles = parameter_roles(graph)
    weights = [n for n, r in roles.items() if r.trainable and r.reason.startswith("weight of ")
               and r.reason.split()[2] in _TARGET_OPS]
    out = [n for n in weights if any(fnmatch.fnmatchcase(n, p) for p in spec.targets)]
    if not out:
        raise GraphError(f"--lora-targets {list(spec.targets)} match no MatMul/Gemm weight; "
                         f"those are {weights}")
    return out


def add_adapters(graph: Graph, spec: LoraSpec) -> tuple[Graph, list[str], dict[str, Any]]:
    """``graph`` reading each target weight through its adapters; returns the graph, the
    adapter parameter names (what trains) and the manifest entry ``{W: {A, B, scale}}``."""
    targets = lora_targets(graph, spec)
    values = {v.name: a for v, a in graph.initializers.items()}
    rng = np.random.default_rng(spec.seed)
    adapted: dict[str, Tensor] = {}
    info: dict[str, Any] = {}

    def effective(b: GraphBuilder, w: Tensor) -> Tensor:
        if w.name not in adapted:
            p, q = values[w.name].shape
            dt = values[w.name].dtype
            a = b.param(w.name + ".lora_A", (rng.standard_normal((p, spec.rank)) /
                                             np.sqrt(p)).astype(dt))
            bb = b.param(w.name + ".lora_B", np.zeros((spec.rank, q), dt))
            adapted[w.name] = w + (a @ bb) * spec.scale
            info[w.name] = {"A": a.name, "B": bb.name, "scale": spec.scale}
        return adapted[w.name]

    def replace(b: GraphBuilder, node: Node, ins: list) -> list[Tensor] | None:
        if not any(v is not None and v.name in targets for v in node.inputs):
            return None
        new = [effective(b, t) if v is not None and v.name in targets else t
               for v, t in zip(node.inputs, ins)]
        return b.apply(node.op, new, names=[o.name for o in node.outputs], **node.attrs)

    for name in targets:
        if values[name].ndim != 2:
            raise GraphError(f"LoRA target {name!r} is {values[name].shape}, not a matrix")
    out = rebuild(graph, replace)[0]
    names = [n for w in targets for n in (info[w]["A"], info[w]["B"])]
    return out, names, info


def merge(lora: Mapping[str, Any], weights: Mapping[str, np.ndarray],
          state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each adapted weight with its trained adapters folded in: ``W + scale * A @ B``."""
    out = {}
    for w, e in lora.items():
        base = np.asarray(weights[w])
        delta = (state[e["A"]].astype(np.float64) @ state[e["B"]].astype(np.float64))
        out[w] = (base.astype(np.float64) + e["scale"] * delta).astype(base.dtype)
    return out
