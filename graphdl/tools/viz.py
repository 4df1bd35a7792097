"""Pictures of a graph: Graphviz DOT text, and SVG/PNG/PDF drawings with forward and gradient
nodes told apart.

Forward ops are blue boxes named by their node, over their op and output types; gradient ops
are orange boxes grouped in a frame per forward node (``grad of matmul_4 (matmul)``), so the
backward half reads as the backprop recursion's per-edge terms; inputs, parameters and
outputs are ellipses.
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
from ..core.dot import to_dot  # noqa: F401 - the DOT text, re-exported
from ..core.ir import Graph
from .viz_layout import (CLUSTER_COLOR, FORWARD_COLOR, GRADIENT_COLOR, INPUT_COLOR,  # noqa: F401
                         OUTPUT_COLOR, PARAM_COLOR, Drawn, draw_matplotlib, layout, node_label,
                         title, value_label)

FORMATS = ("dot", "svg", "png", "pdf")


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
