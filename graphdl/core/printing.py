"""A stable text form of graphs: ``%h1:f32[N,128] = relu(%a1)``, used by errors and golden tests."""
from __future__ import annotations

from typing import Any

import numpy as np

from .ir import Graph, Node, Value


def _attr(v: Any) -> str:
    if isinstance(v, np.ndarray):
        if v.size <= 8:
            return f"{v.dtype}{list(v.shape)}{v.ravel().tolist()}"
        return f"{v.dtype}{list(v.shape)}"
    if isinstance(v, float):
        return repr(float(np.float32(v))) if abs(v) < 1e30 else repr(v)
    return repr(v)


def format_value(v: Value | None) -> str:
    return "_" if v is None else f"%{v.name}"


def format_node(n: Node) -> str:
    outs = ", ".join(f"%{v.name}:{v.type}" for v in n.outputs)
    args = [format_value(v) for v in n.inputs]
    args += [f"{k}={_attr(a)}" for k, a in sorted(n.attrs.items())]
    tag = f"  # grad of {n.grad_of}" if n.grad_of else ""
    return f"{outs} = {n.op}({', '.join(args)}){tag}"


def format_graph(g: Graph) -> str:
    lines = [f"graph {g.name}("]
    lines += [f"    %{v.name}:{v.type}," for v in g.inputs]
    lines += [f"    %{v.name}:{v.type} = param," for v in g.initializers]
    lines.append(") {")
    lines += ["  " + format_node(n) for n in g.nodes]
    lines.append("  return " + ", ".join(f"%{v.name}" for v in g.outputs))
    lines.append("}")
    return "\n".join(lines)
