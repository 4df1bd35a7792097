"""Common-subexpression elimination: two nodes applying the same op with the same attrs to the
same inputs compute the same values, so the later one is dropped and its uses read the first.
Commutative ops match with their inputs in either order; random ops never match."""
from __future__ import annotations

from typing import Any, Hashable

import numpy as np

from graphdl.core.ir import Graph, Node
from graphdl.core.registry import get_op

from ._rewrite import Rewriter
from .manager import Pass, PassResult


def attr_key(v: Any) -> Hashable:
    """A hashable stand-in for an attribute value (arrays by dtype, shape and bytes)."""
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, (list, tuple)):
        return tuple(attr_key(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, attr_key(x)) for k, x in v.items()))
    return v


def node_key(n: Node) -> Hashable | None:
    """What makes two nodes compute the same thing; None for nodes that must stay apart."""
    traits = get_op(n.op).traits
    if "random" in traits:
        return None
    ins = tuple(id(v) if v is not None else None for v in n.inputs)
    if "commutative" in traits:
        ins = tuple(sorted(ins, key=lambda i: -1 if i is None else i))
    return (n.op, ins, attr_key(dict(n.attrs)), len(n.outputs))


def eliminate_common_subexpressions(g: Graph) -> PassResult:
    rw = Rewriter(g)
    seen: dict[Hashable, Node] = {}

    def rule(rw: Rewriter, n: Node) -> bool:
        key = node_key(n)
        if key is None:
            return False
        first = seen.get(key)
        if first is None:
            seen[key] = n
            return False
        if any(o in rw.outputs for o in n.outputs):
            return False
        rw.merge(n, first)
        return True

    return rw.sweep(rule)


class CommonSubexpressionElimination(Pass):
    def run(self, g: Graph) -> PassResult:
        return eliminate_common_subexpressions(g)
