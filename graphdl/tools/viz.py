"""Pictures of a graph: SVG/PNG drawings with forward and gradient nodes told apart (the DOT
text they are drawn from is graphdl.core.dot's).

Ops are boxes labelled with their op and output types (forward: blue; gradient: orange, grouped
by the forward node they were built for, so the backward half reads as the backprop recursion's per-edge
terms); inputs, parameters and outputs are ellipses. :func:`render` uses Graphviz's ``dot`` when
it is installed and otherwise draws with networkx and matplotlib (the ``viz`` extra), so a
picture never needs a system package.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from ..core.errors import GraphError
from ..core.dot import (CLUSTER_COLOR, FORWARD_COLOR, GRADIENT_COLOR, INPUT_COLOR,
                        OUTPUT_COLOR, PARAM_COLOR, node_label, to_dot, value_label)
from ..core.ir import Graph, Node, Value

FORMATS = ("dot", "svg", "png")


# -- the pure-Python drawing -------------------------------------------------------------------


@dataclass
class Drawn:
    """One box or ellipse of a drawing: what it stands for, where, and how it is filled."""

    key: str
    label: str
    kind: str  # "forward", "gradient", "input", "param" or "output"
    color: str
    xy: tuple[float, float]
    grad_of: str | None = None


def layout(graph: Graph) -> tuple[dict[str, Drawn], list[tuple[str, str]]]:
    """Boxes and edges of a drawing. Rows run top to bottom: forward nodes as early as they can
    be, leaves and gradient nodes as late as they can be (just above their first use).
    Forward nodes and leaves sit on the left; each forward node's gradient nodes sit in a column
    group of their own on the right, groups in backprop order, so the frames never overlap."""
    import networkx as nx

    items, edges = _items(graph)
    g = nx.DiGraph(edges)
    g.add_nodes_from(items)
    rows = _rows(g, items)
    fwd_order = {n.name: i for i, n in enumerate(graph.nodes) if n.grad_of is None}
    groups = sorted({d.grad_of for d in items.values() if d.grad_of is not None},
                    key=lambda f: -fwd_order.get(f, -1))
    x0 = 0
    for group in [None, *groups]:
        members = [k for k in items if items[k].grad_of == group]
        by_row: dict[int, list[str]] = {}
        for k in members:
            by_row.setdefault(rows[k], []).append(k)
        for y, row in by_row.items():
            for x, k in enumerate(row):
                items[k].xy = (float(x0 + x), float(-y))
        x0 += max((len(r) for r in by_row.values()), default=0) + (group is None)
    return items, edges


def _rows(g: Any, items: dict[str, Drawn]) -> dict[str, int]:
    """The row of every item: longest path from a leaf, then leaves and gradient nodes pushed
    down to just above their first non-output use; outputs one row below their producer."""
    import networkx as nx

    order = list(nx.topological_sort(g))
    rows: dict[str, int] = {}
    for k in order:
        rows[k] = max((rows[p] + 1 for p in g.predecessors(k)), default=0)
    for k in reversed(order):
        users = [rows[s] for s in g.successors(k) if items[s].kind != "output"]
        if items[k].kind in ("gradient", "input", "param") and users:
            rows[k] = max(rows[k], min(users) - 1)
    for k in order:
        if items[k].kind == "output":
            rows[k] = max(rows[p] for p in g.predecessors(k)) + 1
    return rows


def _items(graph: Graph) -> tuple[dict[str, Drawn], list[tuple[str, str]]]:
    items: dict[str, Drawn] = {}
    key: dict[object, str] = {}
    for kind, color, vals in (("input", INPUT_COLOR, graph.inputs),
                              ("param", PARAM_COLOR, graph.initializers)):
        for v in vals:
            key[v] = f"value:{v.name}"
            items[key[v]] = Drawn(key[v], value_label(v), kind, color, (0.0, 0.0))
    for n in graph.nodes:
        kind = "forward" if n.grad_of is None else "gradient"
        color = FORWARD_COLOR if n.grad_of is None else GRADIENT_COLOR
        key[n] = n.name
        items[n.name] = Drawn(n.name, node_label(n), kind, color, (0.0, 0.0), n.grad_of)
    prod = graph.producers
    edges = [(key[prod[v]] if v in prod else key[v], key[n])
             for n in graph.nodes for v in n.inputs if v is not None]
    for v in graph.outputs:
        k = f"output:{v.name}"
        group = prod[v].grad_of if v in prod else None
        items[k] = Drawn(k, value_label(v), "output", OUTPUT_COLOR, (0.0, 0.0), group)
        edges.append((key[prod[v]] if v in prod else key[v], k))
    return items, edges


def draw_matplotlib(graph: Graph, fmt: str) -> bytes:
    """The drawing of :func:`layout` as PNG or SVG bytes, made by matplotlib (through a bare
    Figure, so a user's pyplot state and backend are left alone)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise GraphError("drawing without Graphviz needs matplotlib: pip install "
                         "'graphdl[viz]' (or install Graphviz's dot)") from None
    import io

    items, edges = layout(graph)
    xs = [d.xy[0] for d in items.values()] or [0.0]
    ys = [d.xy[1] for d in items.values()] or [0.0]
    fig = Figure(figsize=(max(6.0, 1.4 * (max(xs) + 1)), max(4.0, 0.95 * (1 - min(ys)))))
    ax = fig.subplots()
    _draw_clusters(ax, items)
    for a, b in edges:
        ax.annotate("", xy=items[b].xy, xytext=items[a].xy, arrowprops=dict(
            arrowstyle="->", color="#555555", lw=0.7, shrinkA=14, shrinkB=14))
    for d in items.values():
        style = "round,pad=0.3" if d.kind in ("forward", "gradient") else "round4,pad=0.3"
        ax.text(d.xy[0], d.xy[1], d.label, ha="center", va="center", fontsize=6.5,
                bbox=dict(boxstyle=style, fc=d.color, ec="#333333", lw=0.6), zorder=3)
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.set_title(f"{graph.name}: forward (blue) and gradient (orange) nodes", fontsize=9)
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _draw_clusters(ax: Any, items: dict[str, Drawn]) -> None:
    """A dashed frame around the gradient nodes of each forward node, labelled ``grad of X``."""
    from matplotlib.patches import FancyBboxPatch

    groups: dict[str, list[tuple[float, float]]] = {}
    for d in items.values():
        if d.grad_of is not None and d.kind == "gradient":
            groups.setdefault(d.grad_of, []).append(d.xy)
    for fwd, pts in groups.items():
        x0, x1 = min(p[0] for p in pts) - 0.45, max(p[0] for p in pts) + 0.45
        y0, y1 = min(p[1] for p in pts) - 0.4, max(p[1] for p in pts) + 0.4
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0.02",
                                    fill=False, ls="--", lw=0.7, ec=CLUSTER_COLOR, zorder=1))
        ax.text(x0, y1, f"grad of {fwd}", fontsize=6.5, color=CLUSTER_COLOR, va="bottom")


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
    """The picture of ``graph`` in ``fmt`` ("dot", "svg" or "png"), drawn by ``engine``
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
    """"dot", "svg" or "png" from a file name; GraphError for any other extension."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise GraphError(f"{path}: cannot tell the picture format from the extension; "
                         "name a .dot, .svg or .png file")
    return fmt


def render(graph: Graph, path: str, engine: str = "auto") -> str:
    """Writes the picture of ``graph`` to ``path`` (.dot, .svg or .png) atomically; returns
    what drew it ("dot text", "graphviz" or "matplotlib")."""
    from ..core.fileio import write_atomic

    fmt = picture_format(path)
    data = render_bytes(graph, fmt, engine)
    write_atomic(path, lambda f: f.write(data))
    return "dot text" if fmt == "dot" else choose_engine(engine)
