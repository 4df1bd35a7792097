"""A forward sweep that rewrites a graph node by node without re-inferring all of it.

Rules see each node with its inputs already resolved through earlier rewrites; a rule may keep
the node, alias its output to an existing value (dropping the node), or emit new nodes (the
last one producing the old output value). New nodes take their types from the op rules.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from graphdl.core.ir import Graph, Node, Value
from graphdl.core.names import NameGen
from graphdl.core.registry import get_op
from graphdl.core.types import same_type

from .manager import PassResult

Rule = Callable[["Rewriter", Node], bool]


def on(*ops: str) -> Callable[[Rule], Rule]:
    """Marks a rule with the ops it matches, so a sweep only tries it on those."""
    def mark(rule: Rule) -> Rule:
        rule.ops = ops  # type: ignore[attr-defined]
        return rule
    return mark


def by_op(rules: Sequence[Rule]) -> Callable[["Rewriter", Node], bool]:
    """One rule trying, for each node, only the rules marked with its op (in order)."""
    table: dict[str, list[Rule]] = {}
    for r in rules:
        for op in r.ops:  # type: ignore[attr-defined]
            table.setdefault(op, []).append(r)

    def rule(rw: "Rewriter", n: Node) -> bool:
        return any(r(rw, n) for r in table.get(n.op, ()))
    return rule


class Rewriter:
    """Holds the new node list, the value aliases and the producers of the graph being built."""

    def __init__(self, g: Graph):
        self.g = g
        self.alias: dict[Value, Value] = {}
        self.nodes: list[Node] = []
        self.prod: dict[Value, Node] = {}
        self.outputs = set(g.outputs)
        self.changed = False
        self.dropped: set[int] = set()  # ids of kept nodes a later rewrite absorbed
        self.unary: dict[tuple[str, Value | None], Value] = {}  # (op, x) -> op(x) kept so far
        self._names: NameGen | None = None  # made on the first fresh name

    def resolve(self, v: Value | None) -> Value | None:
        while v is not None and v in self.alias:
            v = self.alias[v]
        return v

    def const_of(self, v: Value | None) -> Any:
        """The array of a constant-node value, else None."""
        n = self.prod.get(v)
        return n.attrs["value"] if n is not None and n.op == "constant" else None

    def alias_to(self, old: Value, new: Value) -> bool:
        """Replaces every use of ``old`` by ``new``; refused for graph outputs (their names
        are the graph's interface) and where the types could differ."""
        if old in self.outputs or not same_type(old.type, new.type):
            return False
        self.alias[old] = new
        self.changed = True
        return True

    def merge(self, n: Node, kept: Node) -> None:
        """Drops ``n``, a duplicate of the kept node ``kept`` (same op, inputs and attrs, so
        the same output types): every use of its outputs reads ``kept``'s instead."""
        for old, new in zip(n.outputs, kept.outputs):
            self.alias[old] = new
        self.changed = True

    def fresh(self, prefix: str) -> str:
        if self._names is None:
            self._names = NameGen({v.name for v in self.g.all_values()}
                                  | {n.name for n in self.g.nodes}, sep="_")
        return self._names.fresh(prefix)

    def emit(self, op: str, inputs: Sequence[Value | None], like: Node,
             out: Value | None = None, **attrs: Any) -> Value:
        """Appends a node of ``op``; its output is ``out`` (kept) or a fresh value."""
        opdef = get_op(op)
        full = opdef.check_attrs(attrs)
        (t,) = opdef.infer([None if v is None else v.type for v in inputs], full)
        if out is None:
            out = Value(self.fresh(op), t)
        node = Node(op, tuple(inputs), (out,), full, out.name, like.loc, like.grad_of)
        self.keep(node)
        self.changed = True
        return out

    def keep(self, n: Node) -> None:
        self.nodes.append(n)
        for o in n.outputs:
            self.prod[o] = n
        if len(n.inputs) == 1 and len(n.outputs) == 1:
            self.unary[(n.op, n.inputs[0])] = n.outputs[0]

    def drop(self, n: Node) -> None:
        """Removes a node already kept (its work was absorbed by a later node)."""
        self.dropped.add(id(n))
        self.changed = True

    def sweep(self, rule: Rule) -> PassResult:
        for n in self.g.nodes:
            ins = tuple(self.resolve(v) for v in n.inputs)
            if ins != n.inputs:
                n = Node(n.op, ins, n.outputs, n.attrs, n.name, n.loc, n.grad_of)
            if not rule(self, n):
                self.keep(n)
        return self.result()

    def result(self) -> PassResult:
        if not self.changed:
            return PassResult(self.g, False)
        outs = tuple(self.resolve(v) for v in self.g.outputs)
        nodes = tuple(n for n in self.nodes if id(n) not in self.dropped)
        g = self.g.replace(nodes=nodes, outputs=outs)
        return PassResult(g, True)
