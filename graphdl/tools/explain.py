"""How the backprop pass assembles a gradient, as a readable tree.

The pass (``passes/autodiff.py``) computes, for the loss ``o`` and any value ``v``::

    delta(v) = sum over the uses (node, slot) of v on a path to o of
               vjp_node(delta(node's outputs))[slot]
    delta(o) = 1

:func:`explain` unrolls this recursion from a ``wrt`` value down to the loss: each value lists
its out-edge terms, each term names the forward node (op and inputs) it goes through and
expands the delta of that node's outputs. It is computed from the forward graph's structure,
with the same composite expansion and path pruning as the pass, because graphdl does not import
``passes``; give it the gradient graph the pass built (``grad_graph``) and every term also lists
the gradient nodes tagged with its forward node (``Node.grad_of``), i.e. the code that computes
it. ``graphdl explain`` does exactly that.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.errors import GradError
from ..core.ir import Graph, Node, Value
from ..core.paths import nodes_on_path
from ..core.rewrite import expand_composites

_MAX_PATHS = 20


@dataclass
class Term:
    """One out-edge of a value: the use (node, slot), and the deltas of node's outputs."""

    node: Node
    slot: int
    deltas: list["Delta"]
    grad_nodes: list[Node] = field(default_factory=list)


@dataclass
class Delta:
    """``delta(value)``: the sum of its out-edge terms (none for the loss: the seed 1)."""

    value: Value
    terms: list[Term]
    seed: bool = False
    shown_above: bool = False  # a value reached again: its terms are listed once, above

    def edges(self) -> list[tuple[str, int]]:
        """``(node name, slot)`` of every out-edge term, in graph order."""
        return [(t.node.name, t.slot) for t in self.terms]


@dataclass
class Explanation:
    """The unrolled recursion for each wrt value; ``str()`` is the readable tree."""

    loss: Value
    roots: list[Delta]
    paths: dict[str, list[list[Node]]]

    def __getitem__(self, name: str) -> Delta:
        for r in self.roots:
            if r.value.name == name:
                return r
        raise KeyError(name)

    def __str__(self) -> str:
        return format_explanation(self)


def explain(graph: Graph, loss: Any, wrt: Any, grad_graph: Graph | None = None) -> Explanation:
    """How ``d loss / d wrt`` is assembled by the backprop recursion. ``loss`` is a value or
    name; ``wrt`` one value or name (any float value of the graph) or a list of them."""
    items = [wrt] if isinstance(wrt, (str, Value)) or hasattr(wrt, "value") else list(wrt)
    loss_v, wrt_vs = graph.value(loss), [graph.value(w) for w in items]
    for v in wrt_vs:
        if not v.type.dtype.is_float:
            raise GradError(f"cannot differentiate w.r.t. %{v.name} of dtype {v.type.dtype.name}")
    g, vmap = expand_composites(graph, lambda op: op.vjp is None)
    loss_v, wrt_vs = vmap[loss_v], [vmap[v] for v in wrt_vs]
    by_fwd: dict[str, list[Node]] = {}
    for n in (grad_graph.nodes if grad_graph is not None else ()):
        if n.grad_of is not None:
            by_fwd.setdefault(n.grad_of, []).append(n)
    path = nodes_on_path(g, loss_v, wrt_vs)
    seen: set[Value] = set()
    roots = [_unroll(g, v, loss_v, path, by_fwd, seen) for v in wrt_vs]
    paths = {v.name: _paths(g, v, loss_v, path) for v in wrt_vs}
    return Explanation(loss_v, roots, paths)


def _unroll(g: Graph, v: Value, loss: Value, path: set[Node], by_fwd: dict[str, list[Node]],
            seen: set[Value]) -> Delta:
    """delta(v) as a tree, iteratively (a deep chain must not hit Python's recursion limit)."""
    root = Delta(v, [])
    stack = [root]
    while stack:
        d = stack.pop()
        if d.value is loss:
            d.seed = True
            continue
        if d.value in seen:
            d.shown_above = True
            continue
        seen.add(d.value)
        for node, slot in g.uses.get(d.value, ()):
            if node not in path:
                continue
            kids = [Delta(o, []) for o in node.outputs if _on_path(g, o, path, loss)]
            d.terms.append(Term(node, slot, kids, by_fwd.get(node.name, [])))
        for t in reversed(d.terms):
            stack.extend(reversed(t.deltas))
    return root


def _on_path(g: Graph, v: Value, path: set[Node], loss: Value) -> bool:
    return v is loss or any(n in path for n, _ in g.uses.get(v, ()))


def _paths(g: Graph, v: Value, loss: Value, path: set[Node]) -> list[list[Node]]:
    """Up to _MAX_PATHS forward paths (as node lists) from v to the loss."""
    out: list[list[Node]] = []
    stack: list[tuple[Value, list[Node]]] = [(v, [])]
    while stack and len(out) < _MAX_PATHS:
        val, nodes = stack.pop()
        if val is loss:
            out.append(nodes)
            continue
        nexts = [(o, nodes + [n]) for n, _ in g.uses.get(val, ()) if n in path
                 for o in n.outputs if _on_path(g, o, path, loss)]
        stack.extend(reversed(nexts))
    return out


# -- the text form -----------------------------------------------------------------------------


def _call(n: Node) -> str:
    args = ", ".join("_" if v is None else f"%{v.name}" for v in n.inputs)
    outs = ", ".join(f"%{v.name}" for v in n.outputs)
    return f"{outs} = {n.op}({args})"


def _delta_line(d: Delta) -> str:
    head = f"delta(%{d.value.name}: {d.value.type})"
    if d.seed:
        return f"{head} = 1  (the loss: the recursion's seed)"
    if d.shown_above:
        return f"{head}  (its terms are listed above)"
    k = len(d.terms)
    if k == 0:
        return f"{head} = 0  (no path from it to the loss)"
    return f"{head} = sum of {k} out-edge term{'s' if k != 1 else ''}"


def _term_line(t: Term, i: int) -> str:
    return f"term {i}: vjp of {t.node.op} for input {t.slot}, through {_call(t.node)}"


def _built_by(t: Term) -> str:
    names = ", ".join(n.name for n in t.grad_nodes)
    return f"(built by the gradient nodes of {t.node.name}: {names})"


def format_explanation(ex: Explanation) -> str:
    """The readable tree: values, their out-edge terms, nested down to the loss."""
    lines = ["The backprop recursion (passes/autodiff.py):",
             "  delta(v) = sum over the uses (node, slot) of v of "
             "vjp_node(delta(node outputs))[slot]", "  delta(loss) = 1", ""]
    for root in ex.roots:
        lines.append(f"d {ex.loss.name} / d {root.value.name}:")
        lines += _tree(root)
        ps = ex.paths[root.value.name]
        lines.append(f"forward paths from %{root.value.name} to %{ex.loss.name} "
                     f"({len(ps)}{'+' if len(ps) >= _MAX_PATHS else ''}):")
        lines += ["  " + " -> ".join([root.value.name] + [n.op for n in p]) for p in ps]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _tree(root: Delta) -> list[str]:
    """Indented lines for one delta tree, depth first, with an explicit stack (a chain of
    thousands of nodes must not hit Python's recursion limit). A stack entry is a delta with
    its indent, or a term with its number, its first line's prefix and its children's indent."""
    lines: list[str] = []
    stack: list[tuple[Any, ...]] = [(root, "  ")]
    while stack:
        entry = stack.pop()
        if isinstance(entry[0], Term):
            term, number, head, child_pad = entry
            lines.append(head + _term_line(term, number))
            if term.grad_nodes:
                lines.append(child_pad + _built_by(term))
            stack.extend((kid, child_pad) for kid in reversed(term.deltas))
            continue
        delta, pad = entry
        lines.append(pad + _delta_line(delta))
        n = len(delta.terms)
        for i in range(n, 0, -1):
            last = i == n
            stack.append((delta.terms[i - 1], i, pad + ("`-- " if last else "|-- "),
                          pad + ("    " if last else "|   ")))
    return lines
