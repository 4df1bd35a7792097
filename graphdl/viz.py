"""Graphviz DOT of a graph: forward and gradient nodes told apart.

Ops are boxes (forward: blue; gradient: orange, clustered by the forward node they were built
for, so the backward half reads as the seed's per-edge terms); inputs, parameters and outputs are
ellipses; every edge is labelled with the value's name and type.
"""
from __future__ import annotations

from .ir import Graph, Node, Value

_FORWARD = 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"'
_GRADIENT = 'shape=box, style="rounded,filled", fillcolor="#fbd9b5"'
_INPUT = 'shape=ellipse, style=filled, fillcolor="#d8f0d2"'
_PARAM = 'shape=ellipse, style=filled, fillcolor="#eeeeee"'
_OUTPUT = 'shape=ellipse, peripheries=2'


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _value_label(v: Value) -> str:
    return f"{v.name}\n{v.type}"


def to_dot(graph: Graph) -> str:
    """The graph as Graphviz DOT text (render with ``dot -Tsvg``)."""
    ids: dict[object, str] = {}
    lines = [f"digraph {_q(graph.name)} {{", '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8];']
    for i, v in enumerate(graph.inputs):
        ids[v] = f"in{i}"
        lines.append(f"  in{i} [label={_q(_value_label(v))}, {_INPUT}];")
    for i, v in enumerate(graph.initializers):
        ids[v] = f"p{i}"
        lines.append(f"  p{i} [label={_q(_value_label(v))}, {_PARAM}];")
    clusters: dict[str, list[str]] = {}
    for i, n in enumerate(graph.nodes):
        ids[n] = f"n{i}"
        line = f"n{i} [label={_q(n.op)}, tooltip={_q(n.name)}, "
        line += (_GRADIENT if n.grad_of is not None else _FORWARD) + "];"
        if n.grad_of is None:
            lines.append("  " + line)
        else:
            clusters.setdefault(n.grad_of, []).append(line)
    for k, (fwd, members) in enumerate(clusters.items()):
        lines.append(f"  subgraph cluster_grad{k} {{")
        lines.append(f'    label={_q("grad of " + fwd)}; style=dashed; color="#d08030";')
        lines += [f"    {m}" for m in members]
        lines.append("  }")
    lines += _edges(graph, ids)
    return "\n".join(lines) + "\n}\n"


def _edges(graph: Graph, ids: dict[object, str]) -> list[str]:
    prod: dict[Value, Node] = graph.producers
    out = []
    for n in graph.nodes:
        for v in n.inputs:
            if v is None:
                continue
            src = ids[prod[v]] if v in prod else ids[v]
            label = _q(_value_label(v)) if v in prod else '""'
            out.append(f"  {src} -> {ids[n]} [label={label}];")
    for i, v in enumerate(graph.outputs):
        out.append(f"  out{i} [label={_q(_value_label(v))}, {_OUTPUT}];")
        src = ids[prod[v]] if v in prod else ids[v]
        out.append(f"  {src} -> out{i};")
    return out
