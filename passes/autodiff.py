"""The backprop pass: the gradient graph of a scalar loss, built as ordinary graph code.

It follows the path decomposition of backpropagation. For the loss ``o`` and any value ``h``::

    delta(h) = sum over the uses (node, slot) of h of  vjp_node(delta(node.outputs))[slot]
    delta(o) = 1

``delta`` is memoised and evaluated in reverse topological order (no Python recursion), over the
nodes that lie on a path from a ``wrt`` value to the loss only. Every gradient node is tagged with
the forward node it came from.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from graphdl.core.builder import GraphBuilder, Tensor
from graphdl.core.errors import GradError
from graphdl.core.ir import Graph, Node, Value
from graphdl.ops.reduce import reduce_sum
from graphdl.ops.shape import zeros_like
from graphdl.core.paths import nodes_on_path
from graphdl.core.registry import Call, get_op
from graphdl.core.rewrite import expand_composites
from graphdl.core.types import dims_equal, shape_str

from .dce import eliminate_dead_nodes


def grad(graph: Graph, loss: Any, wrt: Sequence[Any]) -> Graph:
    """The graph computing ``graph``'s outputs, then ``NAME_grad`` = d loss / d NAME for each
    value in ``wrt`` (graph inputs, parameters or intermediate values, by value or name)."""
    loss_v = graph.value(loss)
    wrt_vs = [graph.value(w) for w in wrt]
    _check_loss(loss_v)
    for v in wrt_vs:
        if not v.type.dtype.is_float:
            raise GradError(f"cannot differentiate w.r.t. %{v.name} of dtype {v.type.dtype.name}")
    g, vmap = expand_composites(graph, lambda op: op.vjp is None)
    loss_v, wrt_vs = vmap[loss_v], [vmap[v] for v in wrt_vs]
    b = GraphBuilder.from_graph(g)
    deltas = Backprop(g, b, loss_v, wrt_vs).run()
    outs = {v.name: b.tensor(v) for v in g.outputs}
    for v in wrt_vs:
        d = deltas.get(v)
        outs[_grad_name(b, v, outs)] = d if d is not None else zeros_like(b.tensor(v))
    return eliminate_dead_nodes(b.build(outs))


def expand_gradients(graph: Graph) -> Graph:
    """``graph`` with each gradient request (ONNX Gradient, graphdl/ops/gradient.py) replaced
    by its backprop graph: d y / d x for each requested x, the seed of y all ones as ONNX
    defines it (so a non-scalar y is differentiated through its sum). A request's results
    must be graph outputs only (not read by another node)."""
    requests = [n for n in graph.nodes if n.op == "gradient"]
    if not requests:
        return graph
    made = {v for n in requests for v in n.outputs}
    for n in graph.nodes:
        read = [v for v in n.inputs if v in made]
        if read:
            raise GradError(f"{n.where()} reads %{read[0].name}, a result of a gradient "
                            "request; graphdl expands requests whose results are graph outputs "
                            "only")
    kept = tuple(n for n in graph.nodes if n.op != "gradient")
    g = dataclasses.replace(graph, nodes=kept,
                            outputs=tuple(v for v in graph.outputs if v not in made))
    found: dict[Value, Value] = {}
    for req in requests:
        g, loss = _seeded(g, req.inputs[0])
        g = grad(g, loss, list(req.inputs[1:]))
        found.update(zip(req.outputs, g.outputs[-len(req.outputs):]))
    b = GraphBuilder.from_graph(g)
    outs = {v.name: (b.rename(b.tensor(found[v]), v.name) if v in made else b.tensor(v))
            for v in graph.outputs}
    return eliminate_dead_nodes(b.build(outs))


def _seeded(g: Graph, y: Value) -> tuple[Graph, Value]:
    """(g with y, or the sum of a non-scalar y, as an extra output; that output)."""
    b = GraphBuilder.from_graph(g)
    t = b.tensor(y)
    if y.type.shape is None or any(not dims_equal(d, 1) for d in y.type.shape):
        t = reduce_sum(t)
    outs = {v.name: b.tensor(v) for v in g.outputs}
    outs.setdefault(t.value.name, t)
    out = b.build(outs)
    return out, t.value


def _grad_name(b: GraphBuilder, v: Value, taken: dict) -> str:
    """``NAME_grad``; when a graph already holds that name (a gradient of a gradient graph),
    ``NAME_grad`` followed by a number."""
    name = f"{v.name}_grad"
    if name in taken or b.names.is_taken(name):
        name = b.names.fresh(name + "_", claim=False)
    return name


def _check_loss(v: Value) -> None:
    t = v.type
    if not t.dtype.is_float:
        raise GradError(f"the loss %{v.name} must be floating point, not {t.dtype.name}")
    if t.shape is None or any(not dims_equal(d, 1) for d in t.shape):
        raise GradError(f"the loss %{v.name} must be a scalar, but has shape {shape_str(t.shape)}; "
                        "reduce it first (e.g. reduce_mean)")


class Backprop:
    """The memoised recursion ``delta(value)`` over the nodes on a wrt -> loss path."""

    def __init__(self, g: Graph, b: GraphBuilder, loss: Value, wrt: list[Value]):
        self.g, self.b, self.loss, self.wrt = g, b, loss, wrt
        self.path = nodes_on_path(g, loss, wrt)
        self.memo: dict[Value, Tensor | None] = {}
        self.vjps: dict[Node, Sequence[Tensor | None]] = {}

    def run(self) -> dict[Value, Tensor | None]:
        ones = np.ones(self.loss.type.shape, self.loss.type.dtype.np)
        producer = self.g.producers.get(self.loss)
        if producer is not None:
            with self.b.grad_scope(producer):
                self.memo[self.loss] = self.b.apply1("constant", [], value=ones)
        else:
            self.memo[self.loss] = self.b.const(ones)
        for node in reversed([n for n in self.g.nodes if n in self.path]):
            self.vjps[node] = self.node_vjp(node)  # edge terms of every input of node
        return {v: self.delta(v) for v in self.wrt}

    def delta(self, v: Value) -> Tensor | None:
        """d loss / d v: the sum of the edge terms over every use of v on a path."""
        if v not in self.memo:
            terms = [self.edge_term(n, slot) for n, slot in self.g.uses.get(v, ())
                     if n in self.path]
            terms = [t for t in terms if t is not None]
            producer = self.g.producers.get(v)
            if len(terms) > 1 and producer is not None:
                with self.b.grad_scope(producer):  # the fan-in sum belongs to v's node
                    self.memo[v] = _sum(terms, self.b)
            else:
                self.memo[v] = _sum(terms, self.b)
        return self.memo[v]

    def edge_term(self, node: Node, slot: int) -> Tensor | None:
        """The contribution of the edge (v -> node, slot) to delta(v)."""
        return self.vjps[node][slot]

    def node_vjp(self, node: Node) -> Sequence[Tensor | None]:
        gys = [self.delta(o) for o in node.outputs]
        if all(g is None for g in gys):
            return [None] * len(node.inputs)
        t = self.b.tensor
        call = Call([None if v is None else t(v) for v in node.inputs],
                    [t(v) for v in node.outputs], dict(node.attrs), node)
        with self.b.grad_scope(node):
            terms = list(get_op(node.op).vjp(self.b, call, gys))
        _check_terms(node, terms)
        return terms


def _sum(terms: list[Tensor], b: GraphBuilder) -> Tensor | None:
    if not terms:
        return None
    total = terms[0]
    for t in terms[1:]:
        total = b.apply1("add", [total, t])
    return total


def _check_terms(node: Node, terms: list) -> None:
    where = node.where()
    if len(terms) != len(node.inputs):
        raise GradError(f"{where}: VJP returned {len(terms)} terms for {len(node.inputs)} inputs")
    for slot, (v, t) in enumerate(zip(node.inputs, terms)):
        if t is None or v is None:
            continue
        tt, vt = t.type, v.type
        bad_shape = tt.shape is not None and vt.shape is not None and (
            len(tt.shape) != len(vt.shape)
            or any(dims_equal(a, c) is False for a, c in zip(tt.shape, vt.shape)))
        if tt.dtype != vt.dtype or bad_shape:
            raise GradError(f"{where}: VJP term for input {slot} has type {tt}, but the input "
                            f"%{v.name} has type {vt}")
