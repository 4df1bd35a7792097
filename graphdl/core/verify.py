"""IR invariants: every value defined once and before use, unique names, and node output types
equal to what the op's shape rule infers from the input types."""
from __future__ import annotations

from .errors import GraphError, VerifyError
from .ir import Graph, Value
from .registry import get_op
from .types import TensorType, dims_equal


def verify(g: Graph) -> None:
    """Raises VerifyError naming the first node or value that breaks an invariant."""
    defined: set[Value] = set()
    names: set[str] = set()

    def define(v: Value, what: str) -> None:
        if v in defined:
            raise VerifyError(f"{what}: value %{v.name} is defined twice")
        if v.name in names:
            raise VerifyError(f"{what}: name {v.name!r} is used by two values")
        defined.add(v)
        names.add(v.name)

    for v in g.inputs:
        define(v, "graph input")
    for v in g.initializers:
        define(v, "initializer")
    for n in g.nodes:
        for v in n.inputs:
            if v is not None and v not in defined:
                raise VerifyError(f"{n.where()}: reads %{v.name} before it is defined")
        try:
            op = get_op(n.op)
            want = op.infer([None if v is None else v.type for v in n.inputs], dict(n.attrs))
        except GraphError as e:
            raise VerifyError(f"{n.where()}: {e}") from None
        for o, t in zip(n.outputs, want):
            if not _compatible(o.type, t):
                raise VerifyError(f"{n.where()}: output %{o.name} has type {o.type}, but the "
                                  f"op's rule gives {t}")
            define(o, n.where())
    for v in g.outputs:
        if v not in defined:
            raise VerifyError(f"graph output %{v.name} is not defined")


def _compatible(a: TensorType, b: TensorType) -> bool:
    if a.dtype != b.dtype:
        return False
    if a.shape is None or b.shape is None:
        return True
    return len(a.shape) == len(b.shape) and all(
        dims_equal(x, y) is not False for x, y in zip(a.shape, b.shape))
