"""Which of a compiled plan's buffers it may overwrite, and when each dies.

The interpreter (interpreter.py) writes a kernel's result into an input's buffer only when that
buffer is the plan's own (a fresh kernel made it: ``OpDef.fresh``), no view or alias of it is read later, and it
is not a graph output; this module works that out once per plan, by alias groups and last uses.
"""
from __future__ import annotations

from ..core.ir import Graph, Node, Value
from ..core.registry import get_op
from ..core.types import DType, TensorType, same_type


def constant_outputs(g: Graph) -> set[Value]:
    """The graph outputs that may be (views of) a constant's or an initializer's array: the
    plan returns copies of these, so a caller writing into a result cannot change the graph."""
    shared = set(g.initializers)
    for n in g.nodes:
        if n.op == "constant" or (not get_op(n.op).fresh and shared.intersection(n.inputs)):
            shared.update(n.outputs)
    return shared.intersection(g.outputs)


def mask_casts(g: Graph) -> set[Node]:
    """The graph's casts of a bool mask to a float that only ``mul`` nodes read (not a graph
    output): the plan passes them the mask unconverted (the unfused backprop's ReLU mask
    ``g * cast(y > 0)``), as the interpreter's _mask_for_mul does inside a fused body."""
    readers: dict[Value, list[Node]] = {}
    for n in g.nodes:
        for v in n.inputs:
            if v is not None:
                readers.setdefault(v, []).append(n)
    outs = set(g.outputs)
    casts = {n.outputs[0]: n for n in g.nodes if n.op == "cast" and n.outputs[0] not in outs
             and n.inputs[0].type.dtype == DType.bool and n.outputs[0].type.dtype.is_float}
    found = set()
    for v, n in casts.items():  # each reader multiplies it by a float (bool * bool is bool)
        muls = readers.get(v, [])
        if muls and all(r.op == "mul" and not (set(r.inputs) - {v}) & set(casts)
                        and r.inputs[0] is not r.inputs[1] for r in muls):
            found.add(n)
    return found


def same_buffer_type(a: TensorType, b: TensorType) -> bool:
    """Whether a buffer of type a can hold a result of type b in place: provably the same
    dtype and shape, of rank >= 1 (a 0-d result is a fresh NumPy scalar, never a buffer)."""
    return same_type(a, b) and len(a.shape) > 0


def last_uses(g: Graph, slot: dict[Value, int]) -> dict[int, int]:
    last_use: dict[int, int] = {}
    for step, n in enumerate(g.nodes):
        for v in n.inputs:
            if v is not None:
                last_use[slot[v]] = step
    return last_use


class Buffers:
    """Which values own their buffer, and which buffers die at which step.

    A value is owned when a fresh kernel made it (and ``aliases``, nodes the plan runs as a
    rename, did not). Any other op's outputs may alias its inputs (views, identity,
    constants), so they join their inputs' alias group; a buffer dies at the
    last use of any value in its group, and never if the group holds a graph output."""

    def __init__(self, g: Graph, slot: dict[Value, int], last_use: dict[int, int], keep: set,
                 aliases: set[Node]):
        self.slot = slot
        self.parent = list(range(len(slot)))
        self.owned: set[int] = set()
        for n in g.nodes:
            outs = [slot[v] for v in n.outputs]
            if get_op(n.op).fresh and n not in aliases:
                self.owned.update(outs)
                continue
            for v in n.inputs:
                for o in outs:
                    if v is not None:
                        self._union(slot[v], o)
        self.dies: dict[int, float] = {}
        for s in range(len(slot)):
            r = self._find(s)
            end = float("inf") if s in keep else last_use.get(s, -1)
            self.dies[r] = max(self.dies.get(r, -1), end)

    def _find(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def _union(self, a: int, b: int) -> None:
        self.parent[self._find(a)] = self._find(b)

    def donatable(self, n: Node, step: int) -> list[int]:
        """Input positions of ``n`` whose buffer may take its output."""
        op = get_op(n.op)
        body = "reuses_inputs" in op.traits  # its inline rule checks each buffer's type
        if len(n.outputs) != 1 or (op.inplace is None and not body):
            return []
        out = n.outputs[0].type
        if out.shape is None or len(out.shape) == 0 or not out.dtype.is_float:
            return []
        roots = [None if v is None else self._find(self.slot[v]) for v in n.inputs]
        found = []
        for k, v in enumerate(n.inputs):
            if v is None or self.slot[v] not in self.owned or self.dies[roots[k]] != step:
                continue
            if any(roots[j] == roots[k] and n.inputs[j] is not v for j in range(len(roots))):
                continue  # another input shares this buffer
            if n.inputs.index(v) != k:
                continue  # the same value twice: donate it once
            if body or same_buffer_type(v.type, out):
                found.append(k)
        return found
