"""Which initializers are true parameters, and why.

An imported model's initializers mix weights with constants: shape and axis vectors, dropout
ratios, a recurrent layer's zero initial state, batch-norm running statistics. Training all of
them is wrong (issue 16), so an initializer is a *true parameter* only when a parameterised op
reads it in a weight, bias, scale or table slot, directly or through data-movement ops only
(PyTorch's exporter reorders LSTM gates with Slice and Concat on the weights). Two decomposed
forms are recognised too: PRelu's ``where(x < 0, x * slope, x)`` and an affine normalisation's
``(...) * scale + shift`` (InstanceNormalization imports so).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.ir import Graph, Node, Value
from ..core.registry import get_op

#: the slot roles (OpDef.slots) whose initializers train by default, and those that never do
TRAINED = frozenset({"weight", "bias", "scale", "shift", "table"})
FIXED = frozenset({"initial state", "running statistic"})


def _slot_role(node: Node, slot: int) -> str | None:
    return get_op(node.op).slots.get(slot)


def _biased(node: Node) -> bool:
    """A single-output op with a weight slot (matmul, gemm, conv): an initializer added to its
    result is a bias."""
    return len(node.outputs) == 1 and "weight" in get_op(node.op).slots.values()


@dataclass(frozen=True)
class Role:
    """Why an initializer is (or is not) a parameter: ``reason`` is shown by inspect."""

    name: str
    trainable: bool
    reason: str


def parameter_roles(graph: Graph) -> dict[str, Role]:
    """A :class:`Role` for every initializer of ``graph``, in initializer order."""
    users = _users(graph)
    producer = {o: n for n in graph.nodes for o in n.outputs}
    return {v.name: _role(v, users, producer) for v in graph.initializers}


def true_parameters(graph: Graph) -> list[str]:
    """The names of the initializers that are true parameters, in initializer order."""
    return [n for n, r in parameter_roles(graph).items() if r.trainable]


def _users(graph: Graph) -> dict[Value, list[tuple[Node, int]]]:
    out: dict[Value, list[tuple[Node, int]]] = {}
    for n in graph.nodes:
        for slot, v in enumerate(n.inputs):
            if v is not None:
                out.setdefault(v, []).append((n, slot))
    return out


def _role(v: Value, users: dict, producer: dict) -> Role:
    if not v.type.dtype.is_float:
        return Role(v.name, False, f"{v.type.dtype.name} constant")
    reads = list(_reads(v, users))
    for node, slot in reads:
        role = _param_slot(node, slot, users, producer)
        if role:
            return Role(v.name, True, f"{role} of {node.op} {node.name}")
    for node, slot in reads:
        what = _slot_role(node, slot)
        if what in FIXED:
            return Role(v.name, False, f"{what} of {node.op} {node.name}")
    if not reads:
        return Role(v.name, False, "unused")
    node, slot = reads[0]
    return Role(v.name, False, f"constant: input {slot} of {node.op} {node.name}")


def _reads(v: Value, users: dict):
    """(node, slot) pairs reading ``v``'s data, looking through data-movement ops."""
    todo, seen = [v], {v}
    while todo:
        cur = todo.pop()
        for node, slot in users.get(cur, ()):
            if "moves_data" in get_op(node.op).traits:
                todo.extend(o for o in node.outputs if o not in seen)
                seen.update(node.outputs)
            else:
                yield node, slot


def _param_slot(node: Node, slot: int, users: dict, producer: dict) -> str | None:
    role = _slot_role(node, slot)
    if role in TRAINED:
        return role
    other = node.inputs[1 - slot] if node.op in ("mul", "add") and slot < 2 else None
    if other is None:
        return None
    if node.op == "add" and producer.get(other) is not None:
        src = producer[other]
        if _biased(src):
            return "bias"
        if src.op == "mul" and _numel(node.inputs[slot]) > 1:
            return "shift"
    if node.op == "mul":
        for user, uslot in users.get(node.outputs[0], ()):
            if user.op == "where" and uslot == 1:
                return "slope"
            if user.op == "add" and _numel(node.inputs[slot]) > 1:
                return "scale"
    return None


def _numel(v: Value) -> int:
    shape = v.type.shape
    if shape is None or not all(isinstance(d, int) for d in shape):
        return 2
    size = 1
    for d in shape:
        size *= d
    return size
