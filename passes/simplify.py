"""Algebraic simplification, one small rule per pattern (each docstring says what it rewrites).

A rule that replaces a node by an existing value only fires where the value has provably the
node's type (a broadcasting ``x + 0`` that grows ``x`` stays), and never on a graph output
(its name is part of the graph's interface).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from graphdl.core.ir import Graph, Node
from graphdl.core.registry import get_op
from graphdl.core.types import DType, same_type

from ._rewrite import Rewriter, by_op, on
from .manager import Pass, PassResult


def _all(rw: Rewriter, v, fill: float) -> bool:
    a = rw.const_of(v)
    if a is None or a.size == 0:
        return False
    return a.item() == fill if a.size == 1 else bool(np.all(a == fill))


@on("identity")
def identity_rule(rw: Rewriter, n: Node) -> bool:
    """identity(x) -> x"""
    return n.op == "identity" and rw.alias_to(n.outputs[0], n.inputs[0])


@on("add", "sub", "mul", "div")
def neutral_rule(rw: Rewriter, n: Node) -> bool:
    """x + 0, 0 + x, x - 0 -> x;  x * 1, 1 * x, x / 1 -> x  (x + 0 would turn -0.0 into
    +0.0; like other compilers, the rewrite does not keep that sign)"""
    if n.op not in ("add", "sub", "mul", "div"):
        return False
    x, y = n.inputs
    unit = 0.0 if n.op in ("add", "sub") else 1.0
    if _all(rw, y, unit):
        return rw.alias_to(n.outputs[0], x)
    if n.op in ("add", "mul") and _all(rw, x, unit):
        return rw.alias_to(n.outputs[0], y)
    return False


@on("neg")
def double_neg_rule(rw: Rewriter, n: Node) -> bool:
    """neg(neg(x)) -> x"""
    p = rw.prod.get(n.inputs[0]) if n.op == "neg" else None
    return p is not None and p.op == "neg" and rw.alias_to(n.outputs[0], p.inputs[0])


def _perm(n: Node) -> tuple[int, ...] | None:
    rank = n.inputs[0].type.rank
    if n.attrs["perm"] is not None:
        return tuple(int(i) for i in n.attrs["perm"])
    return None if rank is None else tuple(reversed(range(rank)))


@on("transpose")
def double_transpose_rule(rw: Rewriter, n: Node) -> bool:
    """transpose(transpose(x, p), q) -> x when the permutations cancel, else
    transpose(x, p o q)"""
    p = rw.prod.get(n.inputs[0]) if n.op == "transpose" else None
    if p is None or p.op != "transpose":
        return False
    p1, p2 = _perm(p), _perm(n)
    if p1 is None or p2 is None:
        return False
    both = tuple(p1[i] for i in p2)
    if both == tuple(range(len(both))):
        return rw.alias_to(n.outputs[0], p.inputs[0])
    rw.emit("transpose", [p.inputs[0]], n, out=n.outputs[0], perm=both)
    return True


#: dtype -> the dtypes it converts to and back without loss
_WIDER = {"float16": {"float32", "float64"}, "float32": {"float64"},
          "int32": {"int64", "float64"}, "int8": {"int32", "int64", "float32", "float64"},
          "bool": {"int32", "int64", "float32", "float64"}}


@on("cast")
def cast_rule(rw: Rewriter, n: Node) -> bool:
    """cast(x: T, to=T) -> x;  cast(cast(x, A), B) -> cast(x, B) where A holds every value of
    x's dtype exactly (and -> x when B is x's dtype)"""
    if n.op != "cast":
        return False
    x, to = n.inputs[0], DType.of(n.attrs["to"])
    if x.type.dtype == to:
        return rw.alias_to(n.outputs[0], x)
    p = rw.prod.get(x)
    if p is None or p.op != "cast":
        return False
    inner = p.inputs[0]
    if DType.of(p.attrs["to"]).name not in _WIDER.get(inner.type.dtype.name, ()):
        return False
    if inner.type.dtype == to:
        return rw.alias_to(n.outputs[0], inner)
    rw.emit("cast", [inner], n, out=n.outputs[0], to=to.name)
    return True


@on("reshape", "flatten")
def reshape_rule(rw: Rewriter, n: Node) -> bool:
    """reshape(x, s) -> x when it keeps x's shape;  reshape(reshape(x, s1), s2) ->
    reshape(x, s2), or x when that is x's shape (s2 a constant without a 0, which would copy
    a dim of the middle shape)"""
    if n.op not in ("reshape", "flatten"):
        return False
    if rw.alias_to(n.outputs[0], n.inputs[0]):
        return True
    p = rw.prod.get(n.inputs[0])
    if n.op != "reshape" or p is None or p.op not in ("reshape", "flatten"):
        return False
    s2 = rw.const_of(n.inputs[1])
    if s2 is None or (0 in s2.tolist() and not n.attrs["allowzero"]):
        return False
    if rw.alias_to(n.outputs[0], p.inputs[0]):
        return True
    rw.emit("reshape", [p.inputs[0], n.inputs[1]], n, out=n.outputs[0],
            allowzero=n.attrs["allowzero"])
    return True


@on("shape")
def shape_rule(rw: Rewriter, n: Node) -> bool:
    """shape(x) -> constant, when every dim it reads is static (a symbolic dim stays a shape
    node, so the batch size stays free)"""
    if n.op != "shape":
        return False
    known = n.outputs[0].type.known
    if known is None or not all(isinstance(d, int) for d in known):
        return False
    rw.emit("constant", [], n, out=n.outputs[0], value=np.asarray(known, np.int64))
    return True


@on("greater")
def relu_mask_rule(rw: Rewriter, n: Node) -> bool:
    """greater(x, 0) -> greater(relu(x), 0) where relu(x) is computed before it anyway (equal
    for every x, NaN included): the ReLU's VJP then no longer keeps x alive, so the ReLU can
    run in place on x."""
    x, zero = n.inputs
    if not _all(rw, zero, 0.0) or x.type.dtype.name == "bool":
        return False
    relu = rw.unary.get(("relu", x))
    if relu is None:
        return False
    rw.emit("greater", [relu, zero], n, out=n.outputs[0])
    return True


_BROADCASTING = frozenset({"add", "sub", "mul", "div", "pow", "maximum", "minimum", "where"})


@on(*sorted(_BROADCASTING))
def expand_rule(rw: Rewriter, n: Node) -> bool:
    """op(expand(x, s), y) -> op(x, y) for a broadcasting elementwise op whose result already
    has the expanded shape without the expand (the op broadcasts x itself)"""
    if n.op not in _BROADCASTING:
        return False
    for k, v in enumerate(n.inputs):
        p = rw.prod.get(v)
        if p is None or p.op != "expand":
            continue
        ins = list(n.inputs)
        ins[k] = p.inputs[0]
        opdef = get_op(n.op)
        (t,) = opdef.infer([x.type for x in ins], dict(n.attrs))
        if same_type(t, n.outputs[0].type):
            rw.emit(n.op, ins, n, out=n.outputs[0], **n.attrs)
            return True
    return False


RULES: tuple[Callable[[Rewriter, Node], bool], ...] = (
    identity_rule, neutral_rule, double_neg_rule, double_transpose_rule, cast_rule,
    reshape_rule, shape_rule, expand_rule, relu_mask_rule)


class Simplify(Pass):
    """Applies every rule of ``RULES`` in one forward sweep (rules see earlier rewrites)."""

    def __init__(self, rules=RULES):
        self.rules = tuple(rules)

    def run(self, g: Graph) -> PassResult:
        return Rewriter(g).sweep(by_op(self.rules))
