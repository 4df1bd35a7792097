"""Which nodes lie on a path from some values to a loss: the backprop pass visits only these,
and ``graphdl.tools.explain`` shows only these."""
from __future__ import annotations

from typing import Sequence

from .ir import Graph, Node, Value
from .registry import get_op


def nodes_on_path(g: Graph, loss: Value, wrt: Sequence[Value]) -> set[Node]:
    """Nodes reachable from a ``wrt`` value along float values that ``loss`` depends on, less
    those whose op has no gradient (the ``nondiff`` trait: comparisons, shape)."""
    reached, fwd = set(wrt), set()
    for n in g.nodes:
        if any(v in reached for v in n.inputs if v is not None):
            fwd.add(n)
            reached.update(o for o in n.outputs if o.type.dtype.is_float)
    needed, path = {loss}, set()
    for n in reversed(g.nodes):
        if n in fwd and any(o in needed for o in n.outputs):
            if "nondiff" not in get_op(n.op).traits:
                path.add(n)
                needed.update(v for v in n.inputs if v is not None)
    return path
