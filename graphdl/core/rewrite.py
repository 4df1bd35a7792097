"""Rebuilding a graph node by node, optionally replacing some nodes (used to expand composite
ops for engines that lack their rule, and by shape inference to re-infer every type)."""
from __future__ import annotations

from typing import Callable, Sequence

from .builder import GraphBuilder, Tensor
from .ir import Graph, Node, Value
from .registry import OpDef, get_op

Replace = Callable[[GraphBuilder, Node, list["Tensor | None"]], "Sequence[Tensor] | None"]


def rebuild(graph: Graph, replace: Replace | None = None) -> tuple[Graph, dict[Value, Value]]:
    """Replays ``graph`` through a builder, re-inferring every type. ``replace`` may return new
    tensors for a node (built with the builder it is given) or None to keep it. Returns the new
    graph and the map from old values to new ones; names are kept."""
    b = GraphBuilder(graph.name)
    b.metadata = dict(graph.metadata)
    b.reserve(v.name for v in graph.all_values())  # a decomposition must not take a later name
    vmap: dict[Value, Value] = {}
    for v in graph.inputs:
        vmap[v] = b.input(v.name, v.type.shape, v.type.dtype).value
    for v, arr in graph.initializers.items():
        vmap[v] = b.param(v.name, arr).value
    for node in graph.nodes:
        ins = [None if v is None else Tensor(b, vmap[v]) for v in node.inputs]
        b.loc, b.grad_of = node.loc, node.grad_of
        new = replace(b, node, ins) if replace else None
        if new is None:
            new = b.apply(node.op, ins, names=[o.name for o in node.outputs], **node.attrs)
        else:
            new = [b.rename(t, o.name) for t, o in zip(new, node.outputs)]
        for old, t in zip(node.outputs, new):
            vmap[old] = t.value
    b.loc = b.grad_of = None
    out = b.build([Tensor(b, vmap[v]) for v in graph.outputs])
    return out, vmap


def expand_composites(graph: Graph, needs: Callable[[OpDef], bool]) -> tuple[Graph, dict]:
    """Replaces every composite node whose op ``needs(op)`` by its decomposition, recursively.
    Returns the graph unchanged (and an identity map) when there is nothing to expand."""
    todo = [n for n in graph.nodes if needs(get_op(n.op))]
    if not todo:
        return graph, {v: v for v in graph.all_values()}

    def replace(b: GraphBuilder, node: Node, ins: list) -> Sequence[Tensor] | None:
        op = get_op(node.op)
        if not needs(op):
            return None
        if op.decompose is None:
            raise AssertionError(f"op {op.name} has neither the rule nor a decomposition")
        return op.decompose(b, ins, dict(node.attrs))

    g, vmap = rebuild(graph, replace)
    g2, vmap2 = expand_composites(g, needs)
    return g2, {k: vmap2[v] for k, v in vmap.items()}
