"""Shape inference as a pass: re-infers and validates every type of a graph (after import or a
rewrite), following shape tensors computed in the graph symbolically."""
from __future__ import annotations

from graphdl.core.ir import Graph
from graphdl.core.rewrite import rebuild

from .manager import Pass, PassResult


def infer_shapes(g: Graph) -> Graph:
    """``g`` with every node's output types inferred anew from its inputs by the op rules."""
    out, _ = rebuild(g)
    return out


class ShapeInference(Pass):
    def run(self, g: Graph) -> PassResult:
        out = infer_shapes(g)
        changed = any(str(a.type) != str(b.type)
                      for a, b in zip(g.all_values(), out.all_values()))
        return PassResult(out, changed)
