"""Pictures of a graph: Graphviz DOT text, and SVG/PNG/PDF drawings with forward and gradient
nodes told apart.

Forward ops are blue boxes named by their node, over their op and output types; gradient ops
are orange boxes grouped in a frame per forward node (``grad of matmul_4 (matmul)``), so the
backward half reads as the seed's per-edge terms; inputs, parameters and outputs are ellipses.
The picture runs top to bottom, and a forward value that a gradient node reads is drawn as a
small tag naming it beside the reader instead of an edge across the picture. :func:`render`
uses Graphviz's ``dot`` when it is installed and otherwise draws with networkx and matplotlib
(:mod:`graphdl.tools.viz_layout`, the ``viz`` extra), so a picture never needs a system package.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from ..core.errors import GraphError
from ..core.ir import Graph, Node, Value
from .viz_layout import (CLUSTER_COLOR, FORWARD_COLOR, GRADIENT_COLOR, INPUT_COLOR,  # noqa: F401
                         OUTPUT_COLOR, PARAM_COLOR, Drawn, draw_matplotlib, layout, node_label,
                         title, value_label)

FORMATS = ("dot", "svg", "png", "pdf")

_FORWARD = f'shape=box, style="rounded,filled", fillcolor="{FORWARD_COLOR}"'
_GRADIENT = f'shape=box, style="rounded,filled", fillcolor="{GRADIENT_COLOR}"'
_INPUT = f'shape=ellipse, style=filled, fillcolor="{INPUT_COLOR}"'
_PARAM = f'shape=ellipse, style=filled, fillcolor="{PARAM_COLOR}"'
_OUTPUT = 'shape=ellipse, peripheries=2'
_TAG = 'shape=box, style="rounded,dashed", fontsize=8, fontcolor="#1f4e79", color="#1f4e79"'


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


# -- rendering to a file -----------------------------------------------------------------------


def has_graphviz() -> bool:
    return shutil.which("dot") is not None


def choose_engine(engine: str = "auto") -> str:
    """"graphviz" or "matplotlib": ``auto`` takes Graphviz when its ``dot`` is on PATH."""
    if engine not in ("auto", "graphviz", "matplotlib"):
        raise GraphError(f"unknown engine {engine!r}; expected auto, graphviz or matplotlib")
    if engine == "graphviz" and not has_graphviz():
        raise GraphError("Graphviz's dot is not installed; use engine 'auto' or 'matplotlib'")
    if engine == "auto":
        return "graphviz" if has_graphviz() else "matplotlib"
    return engine


def render_bytes(graph: Graph, fmt: str, engine: str = "auto") -> bytes:
    """The picture of ``graph`` in ``fmt`` ("dot", "svg", "png" or "pdf"), drawn by ``engine``
    ("graphviz", "matplotlib", or "auto": see :func:`choose_engine`)."""
    if fmt not in FORMATS:
        raise GraphError(f"cannot draw to {fmt!r}; the formats are {', '.join(FORMATS)}")
    dot = to_dot(graph)
    if fmt == "dot":
        return dot.encode("utf-8")
    if choose_engine(engine) == "matplotlib":
        return draw_matplotlib(graph, fmt)
    done = subprocess.run(["dot", f"-T{fmt}"], input=dot.encode("utf-8"), capture_output=True,
                          timeout=300)
    if done.returncode != 0:
        raise GraphError(f"dot -T{fmt} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def picture_format(path: str) -> str:
    """"dot", "svg", "png" or "pdf" from a file name; GraphError for any other extension."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise GraphError(f"{path}: cannot tell the picture format from the extension; "
                         "name a .dot, .svg, .png or .pdf file")
    return fmt


def render(graph: Graph, path: str, engine: str = "auto") -> str:
    """Writes the picture of ``graph`` to ``path`` (.dot, .svg, .png, .pdf) atomically; returns
    what drew it ("dot text", "graphviz" or "matplotlib")."""
    from ..core.fileio import write_atomic

    fmt = picture_format(path)
    data = render_bytes(graph, fmt, engine)
    write_atomic(path, lambda f: f.write(data))
    return "dot text" if fmt == "dot" else choose_engine(engine)
