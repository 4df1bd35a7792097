"""Dead-code elimination: drop nodes whose outputs nothing reads."""
from __future__ import annotations

from graphdl.core.ir import Graph

from .manager import Pass, PassResult


def eliminate_dead_nodes(g: Graph) -> Graph:
    """``g`` without the nodes that no output depends on; a random op that nothing reads goes
    too (its draws change no output)."""
    live = set(g.outputs)
    keep = []
    for n in reversed(g.nodes):
        if any(o in live for o in n.outputs):
            keep.append(n)
            live.update(v for v in n.inputs if v is not None)
    if len(keep) == len(g.nodes):
        return g
    inits = {v: a for v, a in g.initializers.items() if v in live}
    return g.replace(nodes=tuple(reversed(keep)), initializers=inits)


class DeadCodeElimination(Pass):
    """Removes nodes no output needs, and unused initializers."""

    def run(self, g: Graph) -> PassResult:
        out = eliminate_dead_nodes(g)
        return PassResult(out, out is not g)
