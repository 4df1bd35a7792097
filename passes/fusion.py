"""Fusion: fewer, bigger nodes.

- :class:`GemmFusion`: MatMul + Add -> Gemm (the bias add done by the GEMM), a transposed
  2-D operand of a MatMul folded into Gemm's transA/transB (the backprop pass emits
  ``g @ W^T`` and ``x^T @ g`` for every dense layer), and Conv + per-channel Add -> Conv with
  its bias input.
- :class:`ActivationFusion`: a ReLU, sigmoid or tanh that is the only reader of a Gemm's (or
  Conv's) result becomes that node's ``activation`` epilogue (graphdl/ops/epilogue.py): one
  node and one array per layer instead of two.
- :class:`LossGradFusion`: a softmax cross-entropy and the softmax-minus-one-hot its VJP
  builds -> one two-output node.
- :class:`ElementwiseFusion`: maximal chains of elementwise ops -> one ``fused_elementwise``
  node (graphdl/ops/fused.py) that evaluates them in place. A group grows from its last node
  towards its producers and takes a producer only when every use of it lies in the group, so
  only the last node's value leaves the group: no path can leave the group and re-enter it
  (the region is convex; :func:`is_convex` checks that with networkx in the tests).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import networkx as nx

from graphdl.core.ir import Graph, Node, Value
from graphdl.core.registry import epilogues, get_op
from graphdl.core.types import dims_equal, same_type

from ._rewrite import Rewriter
from .manager import Pass, PassResult

# -- MatMul + Add -> Gemm ------------------------------------------------------------------------


class GemmFusion(Pass):
    def run(self, g: Graph) -> PassResult:
        outs = set(g.outputs)
        uses = g.uses

        def only_here(v: Value) -> bool:
            return v not in outs and len(uses.get(v, ())) == 1

        def rule(rw: Rewriter, n: Node) -> bool:
            if n.op == "matmul":
                return _matmul_to_gemm(rw, n, only_here)
            if n.op == "add":
                return _add_into_gemm(rw, n, only_here) or _add_into_conv(rw, n, only_here)
            return False

        return Rewriter(g).sweep(rule)


def _transposed(rw: Rewriter, v: Value) -> Node | None:
    p = rw.prod.get(v)
    if p is None or p.op != "transpose" or v.type.rank != 2:
        return None
    return p if p.attrs["perm"] in (None, (1, 0), [1, 0]) else None


def _matmul_to_gemm(rw: Rewriter, n: Node, only_here) -> bool:
    """matmul(a, b) -> gemm(a, b) for 2-D float operands, taking in a transpose of either."""
    a, b = n.inputs
    if a.type.rank != 2 or b.type.rank != 2 or not a.type.dtype.is_float:
        return False
    ta, tb = _transposed(rw, a), _transposed(rw, b)
    if ta is not None:
        a = ta.inputs[0]
        if only_here(n.inputs[0]):
            rw.drop(ta)
    if tb is not None:
        b = tb.inputs[0]
        if only_here(n.inputs[1]):
            rw.drop(tb)
    rw.emit("gemm", [a, b], n, out=n.outputs[0], transA=int(ta is not None),
            transB=int(tb is not None))
    return True


def _add_into_gemm(rw: Rewriter, n: Node, only_here) -> bool:
    """add(gemm(a, b), c) -> gemm(a, b, c) when c broadcasts to the product's shape."""
    for m, c in (n.inputs, n.inputs[::-1]):
        p = rw.prod.get(m)
        if p is None or p.op != "gemm" or len(p.inputs) != 2 or not only_here(m):
            continue
        if p.attrs["activation"] is not None:
            continue  # the bias belongs before the activation
        if p.attrs["alpha"] != 1.0 or c.type.rank is None or c.type.rank > 2:
            continue
        if not same_type(m.type, n.outputs[0].type):
            continue
        rw.drop(p)
        rw.emit("gemm", [p.inputs[0], p.inputs[1], c], n, out=n.outputs[0],
                transA=p.attrs["transA"], transB=p.attrs["transB"])
        return True
    return False


def _channel_vector(rw: Rewriter, c: Value, channels: Any, rank: int) -> Value | None:
    """A [C] vector equal to ``c`` when c is a per-channel bias of a conv output of ``rank``
    ([C, 1, ...] or [1, C, 1, ...]) made by reshape/unsqueeze of a [C] vector."""
    shape = c.type.shape
    if shape is None or not 0 < len(shape) < rank:
        return None
    lead = len(shape) - (rank - 1)
    if lead < 0 or any(d != 1 for d in shape[:lead]) or any(d != 1 for d in shape[lead + 1:]):
        return None
    if dims_equal(shape[lead], channels) is not True:
        return None
    p = rw.prod.get(c)
    if p is None or p.op not in ("reshape", "unsqueeze"):
        return None
    v = p.inputs[0]
    if v.type.shape is None or len(v.type.shape) != 1 or dims_equal(v.type.shape[0],
                                                                     channels) is not True:
        return None
    return v


def _add_into_conv(rw: Rewriter, n: Node, only_here) -> bool:
    """add(conv(x, w), reshape(b, [C, 1, 1])) -> conv(x, w, b)"""
    for m, c in (n.inputs, n.inputs[::-1]):
        p = rw.prod.get(m)
        if p is None or p.op != "conv" or len(p.inputs) > 2 and p.inputs[2] is not None:
            continue
        if p.attrs["activation"] is not None:
            continue  # the bias belongs before the activation
        if not only_here(m) or not same_type(m.type, n.outputs[0].type):
            continue
        bias = _channel_vector(rw, c, m.type.shape[1], m.type.rank)
        if bias is None:
            continue
        rw.drop(p)
        rw.emit("conv", [p.inputs[0], p.inputs[1], bias], n, out=n.outputs[0], **p.attrs)
        return True
    return False


# -- Gemm / Conv + activation -> one node ----------------------------------------------------


def _takes_epilogue(n: Node | None) -> bool:
    """A node of an op with an ``activation`` attribute (gemm, conv), not yet set."""
    return n is not None and "activation" in get_op(n.op).attrs and not n.attrs["activation"]


class ActivationFusion(Pass):
    def run(self, g: Graph) -> PassResult:
        acts = epilogues()  # the activations a producer can apply in place
        made = {n.outputs[0] for n in g.nodes if _takes_epilogue(n)}
        readers = dict.fromkeys((n.inputs[0] for n in g.nodes
                                 if n.op in acts and n.inputs[0] in made), 0)
        if not readers:  # no activation reads a Gemm or Conv: nothing to sweep
            return PassResult(g, False)
        for n in g.nodes:  # readers of the candidates only, not a map of every value's uses
            for v in n.inputs:
                if v in readers:
                    readers[v] += 1
        outs = set(g.outputs)

        def rule(rw: Rewriter, n: Node) -> bool:
            if n.op not in acts:
                return False
            (v,) = n.inputs
            p = rw.prod.get(v)
            if not _takes_epilogue(p):
                return False
            if v in outs or readers.get(v) != 1:
                return False  # the pre-activation is read elsewhere: keep it
            rw.drop(p)
            rw.emit(p.op, list(p.inputs), n, out=n.outputs[0], **{**p.attrs, "activation": n.op})
            return True

        return Rewriter(g).sweep(rule)


# -- softmax cross-entropy + its gradient -> one node --------------------------------------------


class LossGradFusion(Pass):
    """softmax_cross_entropy(z, y) and softmax(z) - onehot(y) (what its VJP emits) ->
    softmax_cross_entropy_and_grad(z, y): one pass over the logits instead of two softmaxes,
    a one-hot matrix and a subtraction."""

    def run(self, g: Graph) -> PassResult:
        losses = {(n.inputs[0], n.inputs[1]): n for n in g.nodes
                  if n.op == "softmax_cross_entropy"}
        if not losses:  # most graphs: one scan, no maps built
            return PassResult(g, False)
        prod = g.producers
        order = {n: i for i, n in enumerate(g.nodes)}
        pairs: dict[Node, Node] = {}
        for n in g.nodes:  # the loss comes first: its node then defines both values in time
            key = _softmax_minus_onehot(prod, n) if n.op == "sub" else None
            loss = losses.get(key) if key is not None else None
            if loss is not None and loss not in pairs and order[loss] < order[n]:
                pairs[loss] = n
        if not pairs:
            return PassResult(g, False)
        grads = set(pairs.values())
        nodes = []
        for n in g.nodes:
            if n in pairs:
                d = pairs[n]
                nodes.append(Node("softmax_cross_entropy_and_grad", n.inputs,
                                  n.outputs + d.outputs, dict(n.attrs), n.name, n.loc, n.grad_of))
            elif n not in grads:
                nodes.append(n)
        return PassResult(g.replace(nodes=tuple(nodes)), True)


def _softmax_minus_onehot(prod: dict, n: Node) -> tuple[Value, Value] | None:
    """(z, labels) when n = softmax(z, axis=1) - cast(unsqueeze(labels, 1) == arange(C))."""
    sm, oh = (prod.get(v) for v in n.inputs)
    if sm is None or oh is None or sm.op != "softmax" or oh.op != "cast":
        return None
    z = sm.inputs[0]
    eq = prod.get(oh.inputs[0])
    if z.type.rank != 2 or sm.attrs["axis"] not in (1, -1) or eq is None or eq.op != "equal":
        return None
    unsq, classes = (prod.get(v) for v in eq.inputs)
    if unsq is None or classes is None or unsq.op != "unsqueeze" or classes.op != "constant":
        return None
    c = z.type.shape[1]
    arange = classes.attrs["value"]
    if tuple(unsq.attrs["axes"]) != (1,) or arange.tolist() != list(range(c if isinstance(c, int)
                                                                           else -1)):
        return None
    return z, unsq.inputs[0]


# -- elementwise chains -> fused_elementwise ------------------------------------------------------


def _fusable(n: Node) -> bool:
    if get_op(n.op).inplace is None or len(n.outputs) != 1:
        return False
    vals = [v for v in n.inputs if v is not None and n.op != "cast"] + list(n.outputs)
    return all(v.type.dtype.is_float or v.type.dtype.name == "bool" for v in vals)


def _literal(n: Node | None) -> bool:
    """A scalar float constant, which a fused body holds as a literal."""
    if n is None or n.op != "constant":
        return False
    a = n.attrs["value"]
    return a.shape == () and a.dtype.kind == "f"


class ElementwiseFusion(Pass):
    """Replaces each group of >= ``min_ops`` fusable elementwise nodes by one fused node."""

    def __init__(self, min_ops: int = 2, max_inputs: int = 64):
        self.min_ops = min_ops
        self.max_inputs = max_inputs

    def run(self, g: Graph) -> PassResult:
        groups = find_groups(g)
        order = {n: i for i, n in enumerate(g.nodes)}
        fused: dict[Node, Node] = {}
        absorbed: set[Node] = set()
        for root, members in groups.items():
            ops = [m for m in members if m.op != "constant"]
            if len(ops) < self.min_ops:
                continue
            node = _fuse(root, sorted(members, key=order.__getitem__), self.max_inputs)
            if node is not None:
                fused[root] = node
                absorbed.update(m for m in members if m.op != "constant")
        if not fused:
            return PassResult(g, False)
        nodes = tuple(fused.get(n, n) for n in g.nodes if n in fused or n not in absorbed)
        return PassResult(g.replace(nodes=nodes), True)


def find_groups(g: Graph, max_ops: int = 128) -> dict[Node, set[Node]]:
    """Each group's last node -> its members (scalar constants it reads included).

    A group grows from its last node through a worklist: a producer joins once every use of
    its value has been seen inside the group, so each node is visited once (linear time)."""
    prod, uses, outs = g.producers, g.uses, set(g.outputs)
    taken: set[Node] = set()
    groups: dict[Node, set[Node]] = {}
    for root in reversed(g.nodes):
        if root in taken or not _fusable(root):
            continue
        members, stack, seen_uses, n_ops = {root}, [root], Counter(), 1
        while stack:
            m = stack.pop()
            for v in dict.fromkeys(v for v in m.inputs if v is not None):
                p = prod.get(v)
                if p is None or p in members or p in taken:
                    continue
                if _literal(p):
                    members.add(p)
                    continue
                if not _fusable(p) or v in outs or n_ops >= max_ops:
                    continue
                seen_uses[v] += m.inputs.count(v)
                if seen_uses[v] == len(uses[v]):
                    members.add(p)
                    stack.append(p)
                    n_ops += 1
        taken.update(m for m in members if m.op != "constant")
        groups[root] = members
    return groups


def _fuse(root: Node, members: list[Node], max_inputs: int) -> Node | None:
    """The fused node computing ``root``'s output from the members' external inputs."""
    index: dict[Value, int] = {}
    ext: list[Value] = []
    inside = {o for m in members if m.op != "constant" for o in m.outputs}
    for m in members:
        for v in m.inputs:
            if v is not None and v not in inside and v not in index:
                index[v] = len(ext)
                ext.append(v)
    if len(ext) > max_inputs or not ext:
        return None
    consts = [m for m in members if m.op == "constant"]
    ext = [v for v in ext if v not in {c.outputs[0] for c in consts}]
    index = {v: i for i, v in enumerate(ext)}
    body = []
    for c in consts:
        a = c.attrs["value"]
        index[c.outputs[0]] = len(ext) + len(body)
        body.append(("constant", (), (("value", float(a)), ("dtype", a.dtype.name))))
    for m in members:
        if m.op == "constant":
            continue
        body.append((m.op, tuple(index[v] for v in m.inputs), tuple(sorted(m.attrs.items()))))
        index[m.outputs[0]] = len(ext) + len(body) - 1
    return Node("fused_elementwise", tuple(ext), root.outputs, {"body": tuple(body)},
                root.name, root.loc, root.grad_of)


def is_convex(g: Graph, region: Iterable[Node]) -> bool:
    """No path leaves ``region`` and comes back into it (networkx reachability)."""
    dg = g.to_networkx()
    names = {n.name for n in region}
    outside = {s for n in names for s in dg.successors(n) if s not in names}
    reach = set(outside)
    for s in outside:
        reach |= nx.descendants(dg, s)
    return not (reach & names)
