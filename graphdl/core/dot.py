"""A graph as Graphviz DOT text: the IR's picture description, forward and gradient nodes told
apart. Ops are boxes labelled with their op and output types (forward: blue; gradient: orange,
grouped by the forward node they were built for); inputs, parameters and outputs are ellipses.
graphdl.tools.viz renders pictures from it (or draws the same with matplotlib)."""
from __future__ import annotations

from .ir import Graph, Node, Value

FORWARD_COLOR = "#dbe9f6"
GRADIENT_COLOR = "#fbd9b5"
INPUT_COLOR = "#d8f0d2"
PARAM_COLOR = "#eeeeee"
OUTPUT_COLOR = "#ffffff"
CLUSTER_COLOR = "#d08030"

_FORWARD = f'shape=box, style="rounded,filled", fillcolor="{FORWARD_COLOR}"'
_GRADIENT = f'shape=box, style="rounded,filled", fillcolor="{GRADIENT_COLOR}"'
_INPUT = f'shape=ellipse, style=filled, fillcolor="{INPUT_COLOR}"'
_PARAM = f'shape=ellipse, style=filled, fillcolor="{PARAM_COLOR}"'
_OUTPUT = 'shape=ellipse, peripheries=2'


def quote(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def value_label(v: Value) -> str:
    return f"{v.name}\n{v.type}"


def node_label(n: Node) -> str:
    """``op`` over the node's output types, e.g. ``matmul\\nf32[N,256]``."""
    return n.op + "".join(f"\n{v.type}" for v in n.outputs)


def to_dot(graph: Graph) -> str:
    """The graph as Graphviz DOT text (render with ``dot -Tsvg``)."""
    ids: dict[object, str] = {}
    lines = [f"digraph {quote(graph.name)} {{", '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8];']
    for i, v in enumerate(graph.inputs):
        ids[v] = f"in{i}"
        lines.append(f"  in{i} [label={quote(value_label(v))}, {_INPUT}];")
    for i, v in enumerate(graph.initializers):
        ids[v] = f"p{i}"
        lines.append(f"  p{i} [label={quote(value_label(v))}, {_PARAM}];")
    clusters: dict[str, list[str]] = {}
    for i, n in enumerate(graph.nodes):
        ids[n] = f"n{i}"
        line = f"n{i} [label={quote(node_label(n))}, tooltip={quote(n.name)}, "
        line += (_GRADIENT if n.grad_of is not None else _FORWARD) + "];"
        if n.grad_of is None:
            lines.append("  " + line)
        else:
            clusters.setdefault(n.grad_of, []).append(line)
    for k, (fwd, members) in enumerate(clusters.items()):
        lines.append(f"  subgraph cluster_grad{k} {{")
        lines.append(f'    label={quote("grad of " + fwd)}; style=dashed; color="{CLUSTER_COLOR}";')
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
            label = quote(value_label(v)) if v in prod else '""'
            out.append(f"  {src} -> {ids[n]} [label={label}];")
    for i, v in enumerate(graph.outputs):
        out.append(f"  out{i} [label={quote(value_label(v))}, {_OUTPUT}];")
        src = ids[prod[v]] if v in prod else ids[v]
        out.append(f"  {src} -> out{i};")
    return out
