"""An opt-in numerics check: which node first produces NaN or Inf, in either engine.

The NumPy engine is stepped node by node over the graph as written (no fusion, no buffer
reuse; composite ops expanded into the ops they are made of, which keep the user's line), so the
node named is the user's own. For ONNX Runtime the exported model gets every
intermediate value as an extra output, and the first ONNX node (in the model's topological
order) with a non-finite output is named, with the graphdl value it computes where the export
kept the name. The check costs a full trace, so it is never on by default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import onnx

from ..core.errors import GraphError
from ..core.feeds import check_feeds
from ..core.ir import Graph
from .interpreter import Plan


class NumericsError(GraphError):
    """A node produced NaN or Inf; the message names it, its op and the output."""


@dataclass(frozen=True)
class Finding:
    """The first non-finite value: where it came from and how many entries are bad."""

    engine: str
    node: str
    op: str
    output: str
    nan: int
    inf: int

    def __str__(self) -> str:
        return (f"{self.engine}: {self.node} (op {self.op}) produced {self.nan} NaN and "
                f"{self.inf} Inf value(s) in output {self.output!r}")


def _bad(arr: Any) -> tuple[int, int] | None:
    a = np.asarray(arr)
    if a.dtype.kind not in "fc" or a.size == 0 or np.all(np.isfinite(a)):
        return None
    return int(np.isnan(a).sum()), int(np.isinf(a).sum())


def find_nonfinite(graph: Graph, feeds: Mapping[str, Any], backend: str = "numpy",
                   provider: str = "cpu") -> Finding | None:
    """The first node whose output holds NaN or Inf, or None when every value is finite."""
    arrays = check_feeds(graph.inputs, feeds)
    for name, arr in arrays.items():
        counts = _bad(arr)
        if counts:
            return Finding(backend, f"feed {name!r}", "input", name, *counts)
    if backend == "numpy":
        return _numpy(graph, arrays)
    if backend == "ort":
        return _ort(graph, arrays, provider)
    raise GraphError(f"unknown backend {backend!r}; expected 'numpy' or 'ort'")


def check_numerics(graph: Graph, feeds: Mapping[str, Any], backend: str = "numpy",
                   provider: str = "cpu") -> None:
    """Raises NumericsError naming the first node that produces NaN or Inf."""
    found = find_nonfinite(graph, feeds, backend, provider)
    if found is not None:
        raise NumericsError(str(found))


def _numpy(graph: Graph, arrays: dict[str, np.ndarray]) -> Finding | None:
    """The plan's node loop (composites expanded to the ops they are made of, each keeping the
    user's line), stopped at the first non-finite output."""
    with np.errstate(all="ignore"):  # reported below, with the node's name
        for n, res in Plan(graph, inplace=False).run_nodes(arrays):
            for v, arr in zip(n.outputs, res):
                counts = _bad(arr)
                if counts:
                    where = n.loc or f"node {n.name!r}"
                    return Finding("numpy", where, n.op, v.name, *counts)
    return None


def _ort(graph: Graph, arrays: dict[str, np.ndarray], provider: str) -> Finding | None:
    import onnxruntime as ort

    from ..onnx.export import to_onnx
    from .runtime import ort_providers

    model = onnx.shape_inference.infer_shapes(to_onnx(graph))
    names = _expose_intermediates(model)
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=ort_providers(provider))
    values = dict(zip(names, sess.run(names, arrays)))
    for i, node in enumerate(model.graph.node):
        for out in node.output:
            counts = _bad(values[out]) if out in values else None
            if counts:
                where = f"ONNX node {node.name!r}" if node.name else f"ONNX node #{i}"
                return Finding("ort", where, node.op_type, out, *counts)
    return None


def _expose_intermediates(model: onnx.ModelProto) -> list[str]:
    """Adds every typed node output as a graph output; returns all output names."""
    g = model.graph
    have = {o.name for o in g.output}
    typed = {vi.name: vi for vi in g.value_info}
    for node in g.node:
        for out in node.output:
            if out and out not in have and out in typed:
                g.output.append(typed[out])
                have.add(out)
    return [o.name for o in g.output]
