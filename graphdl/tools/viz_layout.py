"""The pure-Python drawing of a graph (networkx for the order, matplotlib for the picture), for
machines without Graphviz; :mod:`graphdl.tools.viz` chooses between the two.

The picture reads top to bottom. The forward graph comes first, each box named by its node
(``matmul_4``) over its op and output types; below it the gradient graph, one dashed frame per
forward node labelled ``grad of matmul_4 (matmul)``, frames in the order backprop builds them
(the loss's first). Every edge points down. An edge that would cross the picture (a forward
value read by a gradient node far below, or any edge spanning many rows) is drawn as a short
arrow from a tag naming its source, so no line runs across the canvas.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.errors import GraphError
from ..core.dot import (CLUSTER_COLOR, FORWARD_COLOR, GRADIENT_COLOR, INPUT_COLOR, OUTPUT_COLOR,
                        PARAM_COLOR, node_label, title, value_label)
from ..core.ir import Graph

#: an edge spanning more rows than this is drawn as a tag naming its source
LONG_EDGE_ROWS = 5
COL_INCHES, ROW_INCHES, DPI = 1.55, 0.6, 110


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
    """Boxes and edges of a drawing: the forward section's rows, then each gradient frame's
    rows below the last, frames ordered so that every edge points down (backprop order where
    the edges allow). Within a row, boxes sit in the order of their sources' columns."""
    import networkx as nx

    items, edges = _items(graph)
    g = nx.DiGraph(edges)
    g.add_nodes_from(items)
    fwd_pos = {n.name: i for i, n in enumerate(graph.nodes) if n.grad_of is None}
    row = 0
    for group in [None, *_frame_order(g, items, fwd_pos)]:
        members = [k for k in items if items[k].grad_of == group]
        rows = _rows(g.subgraph(members), items)
        _place(g, items, members, rows, row)
        row += max(rows.values(), default=-1) + 2  # one empty row for the next frame's label
    return items, edges


def _frame_order(g: Any, items: dict[str, Drawn], fwd_pos: dict[str, int]) -> list[str]:
    """The gradient frames in an order where edges between frames point down, latest forward
    node first (the order backprop visits them)."""
    import networkx as nx

    frames = nx.DiGraph()
    frames.add_nodes_from({d.grad_of for d in items.values() if d.grad_of is not None})
    for a, b in g.edges:
        fa, fb = items[a].grad_of, items[b].grad_of
        if fa is not None and fb is not None and fa != fb:
            frames.add_edge(fa, fb)
    key = lambda f: -fwd_pos.get(f, -1)  # noqa: E731
    if not nx.is_directed_acyclic_graph(frames):
        raise GraphError("the gradient nodes' frames depend on each other in a cycle; "
                         "draw with Graphviz (engine 'graphviz') instead")
    return list(nx.lexicographical_topological_sort(frames, key=key))


def _rows(g: Any, items: dict[str, Drawn]) -> dict[str, int]:
    """The row of every item in ``g``: longest path from a leaf, then leaves and gradient nodes
    pushed down to just above their first use; outputs one row below their producer."""
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
        preds = list(g.predecessors(k))
        if items[k].kind == "output" and preds:
            rows[k] = max(rows[p] for p in preds) + 1
    return rows


def _place(g: Any, items: dict[str, Drawn], members: list[str], rows: dict[str, int],
           top: int) -> None:
    """x and y of each member: rows from ``top`` down; in a row, by the mean column of the
    item's already placed sources (one sweep of the barycentre heuristic)."""
    by_row: dict[int, list[str]] = {}
    for k in members:
        by_row.setdefault(rows[k], []).append(k)
    placed: set[str] = set()
    for r in sorted(by_row):
        def centre(k: str) -> float:
            xs = [items[p].xy[0] for p in g.predecessors(k) if p in placed]
            return sum(xs) / len(xs) if xs else 0.0
        for x, k in enumerate(sorted(by_row[r], key=centre)):
            items[k].xy = (float(x), float(-(top + r)))
        placed.update(by_row[r])


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


def is_long(a: Drawn, b: Drawn) -> bool:
    """Whether edge a -> b is drawn as a tag: forward to gradient, or many rows long."""
    crosses = a.grad_of is None and a.kind != "output" and b.grad_of is not None
    return crosses or a.xy[1] - b.xy[1] > LONG_EDGE_ROWS


def tag_name(d: Drawn) -> str:
    """How a tag names an edge's source: the node's or the value's name."""
    return d.key.split(":", 1)[1] if ":" in d.key else d.key


# -- matplotlib --------------------------------------------------------------------------------


def draw_matplotlib(graph: Graph, fmt: str) -> bytes:
    """The drawing of :func:`layout` as PNG, SVG or PDF bytes, made by matplotlib (through a
    bare Figure, so a user's pyplot state and backend are left alone)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise GraphError("drawing without Graphviz needs matplotlib: pip install "
                         "'graphdl[viz]' (or install Graphviz's dot)") from None
    import io

    items, edges = layout(graph)
    xs = [d.xy[0] for d in items.values()] or [0.0]
    ys = [d.xy[1] for d in items.values()] or [0.0]
    width, height = max(xs) - min(xs) + 1.9, max(ys) - min(ys) + 1.6
    fig = Figure(figsize=(max(5.0, COL_INCHES * width), max(3.0, ROW_INCHES * height)))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0 - 0.3 / max(3.0, ROW_INCHES * height)))
    _draw_frames(ax, items)
    tags: dict[str, int] = {}
    for a, b in edges:
        if is_long(items[a], items[b]):
            _draw_tag(ax, items[a], items[b], tags.get(b, 0))
            tags[b] = tags.get(b, 0) + 1
        else:
            ax.annotate("", xy=items[b].xy, xytext=items[a].xy, arrowprops=dict(
                arrowstyle="->", color="#555555", lw=0.7, shrinkA=13, shrinkB=13))
    for d in items.values():
        style = "round,pad=0.3" if d.kind in ("forward", "gradient") else "round4,pad=0.3"
        ax.text(d.xy[0], d.xy[1], d.label, ha="center", va="center", fontsize=7,
                fontweight="bold" if d.kind == "forward" else "normal",
                bbox=dict(boxstyle=style, fc=d.color, ec="#333333", lw=0.6), zorder=3)
    ax.set_xlim(min(xs) - 1.1, max(xs) + 0.8)  # room on the left for tags
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    fig.suptitle(title(graph), fontsize=8.5, y=0.998, va="top")
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=DPI)
    return buf.getvalue()


def _draw_tag(ax: Any, src: Drawn, dst: Drawn, k: int) -> None:
    """A short arrow into ``dst`` from a small tag naming ``src``; the k-th tag of ``dst``
    sits further left."""
    x, y = dst.xy[0] - 0.5 - 0.38 * k, dst.xy[1] + 0.3
    ax.annotate(tag_name(src), xy=dst.xy, xytext=(x, y), fontsize=6.5, ha="center",
                va="center", color="#1f4e79", zorder=4,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="#1f4e79", lw=0.6),
                arrowprops=dict(arrowstyle="->", color="#1f4e79", lw=0.6, shrinkA=0,
                                shrinkB=13, linestyle=(0, (2, 1))))


def _draw_frames(ax: Any, items: dict[str, Drawn]) -> None:
    """A dashed frame around the gradient nodes of each forward node, labelled
    ``grad of NAME (op)`` so the forward box named NAME is easy to find."""
    from matplotlib.patches import FancyBboxPatch

    groups: dict[str, list[tuple[float, float]]] = {}
    for d in items.values():
        if d.grad_of is not None and d.kind == "gradient":
            groups.setdefault(d.grad_of, []).append(d.xy)
    for fwd, pts in groups.items():
        x0, x1 = min(p[0] for p in pts) - 0.48, max(p[0] for p in pts) + 0.48
        y0, y1 = min(p[1] for p in pts) - 0.4, max(p[1] for p in pts) + 0.4
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0.02",
                                    fill=False, ls="--", lw=0.8, ec=CLUSTER_COLOR, zorder=1))
        op = items[fwd].label.split("\n")[1] if fwd in items else "?"
        ax.text(x0, y1 + 0.05, f"grad of {fwd} ({op})", fontsize=7.5, color=CLUSTER_COLOR,
                va="bottom", fontweight="bold")
