"""A table of a graph: node, op, output shapes (symbolic dims kept), dtypes, parameters read,
and a FLOPs estimate per node, with totals. ``graph.summary()`` and ``graphdl inspect``.

FLOPs are counted as a multiply-add = 2 for matmul, gemm and convolutions, one per output
element for elementwise ops, one per input element for reductions and losses, and zero for ops
that only move data (the ``shape`` and ``nondiff`` traits). An op whose work those rules miss
gives its own count (``OpDef.flops``): the recurrent ops (``rnn``, ``lstm``, ``gru``, and
``lstm_scan``: G = 1, 4, 3 gates of H units, input size I) count, per direction, time step
and batch item, their two matmuls ``2*G*H*(I + H)``, one FLOP per gate unit for adding the two
products, adding the bias (when given) and the gate's activation, and the state update
(LSTM ``c = f*c + i*g``, ``h = o*tanh(c)``: 5H; GRU ``r*(...)`` and ``(1-z)*n + z*h``: 5H).
With a symbolic batch dim the count is a polynomial such as ``99840*N + 256``; an unknown dim
makes it ``?``.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .ir import Graph, Node, Value
from .registry import get_op
from .types import Dim, Sym, dim_mul, dim_prod, dim_str

Poly = dict[tuple, Fraction]  # monomial (Sym factors) -> coefficient; None: unknown


@dataclass
class Row:
    """One node of the table."""

    node: str
    op: str
    outputs: list[Value]
    params: int
    flops: Poly | None
    grad_of: str | None


@dataclass
class Summary:
    """The table; ``str()`` prints it, :meth:`to_dict` is the JSON form."""

    graph: Graph
    rows: list[Row]

    @property
    def total_params(self) -> int:
        return self.graph.param_count()

    @property
    def total_flops(self) -> Poly | None:
        total: Poly = {}
        for r in self.rows:
            if r.flops is None:
                return None
            for mono, c in r.flops.items():
                total[mono] = total.get(mono, Fraction(0)) + c
        return total

    def to_dict(self) -> dict[str, Any]:
        g = self.graph
        return {"graph": g.name,
                "inputs": [_value_dict(v) for v in g.inputs],
                "outputs": [_value_dict(v) for v in g.outputs],
                "parameters": [_value_dict(v) for v in g.initializers],
                "nodes": [{"name": r.node, "op": r.op, "grad_of": r.grad_of,
                           "outputs": [_value_dict(v) for v in r.outputs],
                           "params": r.params, "flops": poly_str(r.flops)} for r in self.rows],
                "totals": {"nodes": len(self.rows), "params": self.total_params,
                           "flops": poly_str(self.total_flops)}}

    def __str__(self) -> str:
        return format_summary(self)


def summarize(graph: Graph) -> Summary:
    """The summary table of ``graph``."""
    counted: set[Value] = set()
    rows = []
    for n in graph.nodes:
        fresh = [v for v in n.inputs if v in graph.initializers and v not in counted]
        counted.update(fresh)
        params = int(sum(graph.initializers[v].size for v in fresh))
        rows.append(Row(n.name, n.op, list(n.outputs), params, node_flops(n), n.grad_of))
    return Summary(graph, rows)


# -- FLOPs -------------------------------------------------------------------------------------


def node_flops(n: Node) -> Poly | None:
    """The FLOPs estimate of one node (see the module docstring), None where a dim is
    unknown."""
    traits = get_op(n.op).traits
    if traits & {"shape", "nondiff"} or not n.outputs:
        return {}
    out = _numel(n.outputs[0])
    rule = get_op(n.op).flops
    if rule is not None:  # the op's own count (recurrent ops: per cell and step)
        return _poly(rule(n))
    if n.op in ("matmul", "gemm") or n.op.startswith("conv"):
        return _poly(dim_mul(2, dim_mul(out, _reduced_size(n))))
    if "elementwise" in traits:
        return _poly(out)
    first = next((v for v in n.inputs if v is not None), None)
    return _poly(_numel(first) if first is not None else out)


def _reduced_size(n: Node) -> Dim:
    """The length of the summed axis: K of matmul/gemm, Cin/groups * kernel size of a conv."""
    a, w = n.inputs[0], n.inputs[1]
    if n.op == "matmul":
        return a.type.shape[-1] if a.type.shape else None
    if n.op == "gemm":
        shape = a.type.shape
        return None if shape is None else shape[0 if n.attrs.get("transA") else -1]
    return None if w.type.shape is None else dim_prod(w.type.shape[1:])


def _numel(v: Value) -> Dim:
    return None if v.type.shape is None else dim_prod(v.type.shape)


def _poly(d: Dim) -> Poly | None:
    if d is None:
        return None
    if isinstance(d, int):
        return {(): Fraction(d)} if d else {}
    return {d.factors: d.coeff}


def poly_str(p: Poly | None) -> str:
    """``99840*N + 256``; ``0`` for none, ``?`` for unknown."""
    if p is None:
        return "?"
    terms = sorted(((m, c) for m, c in p.items() if c), key=lambda mc: (-len(mc[0]), mc[0]))
    if not terms:
        return "0"
    return " + ".join(str(int(c)) if not m else str(Sym(c, m)) for m, c in terms)


# -- text and JSON -----------------------------------------------------------------------------


def _value_dict(v: Value) -> dict[str, Any]:
    shape = v.type.shape
    dims = None if shape is None else [d if isinstance(d, int) else dim_str(d) for d in shape]
    return {"name": v.name, "dtype": v.type.dtype.name, "shape": dims}


def _shapes(vals: list[Value]) -> str:
    return ", ".join(str(v.type) for v in vals)


def format_summary(s: Summary) -> str:
    """An aligned table with a totals line."""
    head = ("node", "op", "output", "params", "flops")
    body = [(r.node + (" *" if r.grad_of else ""), r.op, _shapes(r.outputs),
             f"{r.params:,}" if r.params else "", poly_str(r.flops)) for r in s.rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"total: {len(s.rows)} nodes, {s.total_params:,} parameters, "
                 f"{poly_str(s.total_flops)} FLOPs")
    if any(r.grad_of for r in s.rows):
        lines.append("(* gradient node)")
    return "\n".join(lines)
