"""A graph as Graphviz DOT text, the IR's own picture description: forward ops as blue
boxes named by their node, gradient ops as orange boxes framed per forward node, inputs,
parameters and outputs as ellipses, top to bottom. graphdl.tools.viz renders pictures from
it (or draws the same with matplotlib, graphdl.tools.viz_layout)."""
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
_TAG = 'shape=box, style="rounded,dashed", fontsize=8, fontcolor="#1f4e79", color="#1f4e79"'


def value_label(v: Value) -> str:
    return f"{v.name}\n{v.type}"


def node_label(n: Node) -> str:
    """A forward node: its name, op and output types (``matmul_4\\nmatmul\\nf32[N,256]``); a
    gradient node: op and output types (its frame names the forward node)."""
    types = "".join(f"\n{v.type}" for v in n.outputs)
    return (n.op if n.grad_of is not None else f"{n.name}\n{n.op}") + types


def title(graph: Graph) -> str:
    """What the picture shows, in words that fit it (a forward-only graph has no orange)."""
    if any(n.grad_of is not None for n in graph.nodes):
        return (f"{graph.name}: forward nodes (blue), then gradient nodes (orange) framed by "
                "the forward node they differentiate")
    return f"{graph.name}: forward graph"


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    """The graph as Graphviz DOT text (render with ``dot -Tsvg``): top to bottom, the forward
    graph first, then one frame of gradient nodes per forward node in backprop order, forward
    values read by gradient nodes shown as tags inside the reader's frame."""
    ids: dict[object, str] = {}
    lines = [f"digraph {_q(graph.name)} {{",
             "  rankdir=TB; newrank=true; nodesep=0.2; ranksep=0.3;",
             f'  label={_q(title(graph))}; labelloc=t; fontname="Helvetica"; fontsize=12;',
             '  node [fontname="Helvetica", fontsize=10];']
    for i, v in enumerate(graph.inputs):
        ids[v] = f"in{i}"
        lines.append(f"  in{i} [label={_q(value_label(v))}, {_INPUT}];")
    for i, v in enumerate(graph.initializers):
        ids[v] = f"p{i}"
        lines.append(f"  p{i} [label={_q(value_label(v))}, {_PARAM}];")
    frames: dict[str, list[str]] = {}  # forward node -> its frame's lines
    members: dict[str, list[str]] = {}  # forward node -> ids in its frame
    for i, n in enumerate(graph.nodes):
        ids[n] = f"n{i}"
        line = f"n{i} [label={_q(node_label(n))}, tooltip={_q(n.name)}, "
        line += (_GRADIENT if n.grad_of is not None else _FORWARD) + "];"
        if n.grad_of is None:
            lines.append("  " + line)
        else:
            frames.setdefault(n.grad_of, []).append(line)
            members.setdefault(n.grad_of, []).append(f"n{i}")
    edges = _edges(graph, ids, frames, members)
    lines += [f"  out{i} [label={_q(value_label(v))}, {_OUTPUT}];"
              for i, v in enumerate(graph.outputs)]
    ops = {n.name: n.op for n in graph.nodes}
    for k, (fwd, body) in enumerate(frames.items()):
        lines.append(f"  subgraph cluster_grad{k} {{")
        label = f"grad of {fwd} ({ops.get(fwd, '?')})"
        lines.append(f'    label={_q(label)}; style=dashed; color="{CLUSTER_COLOR}"; '
                     f'fontcolor="{CLUSTER_COLOR}";')
        lines += [f"    {m}" for m in body]
        lines.append("  }")
    lines += [f"  {a} -> {b}{attrs};" for a, b, attrs in edges]
    lines += [f"  {a} -> {b} [style=invis];" for a, b in _stacking(graph, edges, members)]
    return "\n".join(lines) + "\n}\n"


def _edges(graph: Graph, ids: dict[object, str], frames: dict[str, list[str]],
           members: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(source, target, attributes) of every edge. One from a forward node or leaf into a
    gradient node becomes a tag node in the reader's frame naming the source, with a short,
    heavy edge to the reader (so the tag sits just above it)."""
    prod: dict[Value, Node] = graph.producers
    out: list[tuple[str, str, str]] = []
    for n in graph.nodes:
        for v in n.inputs:
            if v is None:
                continue
            src = prod.get(v)
            if n.grad_of is not None and (src is None or src.grad_of is None):
                tag = f"t{len(out)}"
                frames[n.grad_of].append(f"{tag} [label={_q(v.name)}, {_TAG}];")
                members[n.grad_of].append(tag)
                out.append((tag, ids[n], ' [style=dashed, color="#1f4e79", weight=10]'))
                continue
            out.append((ids[src] if src is not None else ids[v], ids[n], ""))
    for i, v in enumerate(graph.outputs):
        out.append((ids[prod[v]] if v in prod else ids[v], f"out{i}", ""))
    return out


def _stacking(graph: Graph, edges: list[tuple[str, str, str]],
              members: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Invisible edges that rank the frames one below the other in backprop order, below the
    forward graph's outputs: dot then draws a narrow picture that reads top to bottom instead
    of spreading the frames side by side."""
    order = sorted(members, key=lambda f: -next(
        (i for i, n in enumerate(graph.nodes) if n.name == f), -1))
    inside = {f: set(ms) for f, ms in members.items()}
    prod = graph.producers
    above = [f"out{i}" for i, v in enumerate(graph.outputs)
             if v in prod and prod[v].grad_of is None]
    pairs = []
    for f in order:
        tops = [m for m in members[f] if not any(b == m and a in inside[f] for a, b, _ in edges)]
        pairs += [(a, t) for a in above for t in tops]
        above = [m for m in members[f] if not any(a == m and b in inside[f] for a, b, _ in edges)]
    return pairs
