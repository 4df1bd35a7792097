"""Numerical-stability rewrites: forms that overflow to inf/nan for large inputs replaced by the
stable ops graphdl already has (log-sum-exp and logits forms).

Each rule fires only on the exact pattern in its docstring; tests/test_pass_stability.py shows
for each an input where the original graph gives inf or nan and the rewritten one does not.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from graphdl.core.ir import Graph, Node, Value

from ._rewrite import Rewriter, by_op, on
from .manager import Pass, PassResult


def _producer(rw: Rewriter, v: Value | None, *ops: str) -> Node | None:
    p = rw.prod.get(v)
    return p if p is not None and p.op in ops else None


@on("log")
def log_softmax_rule(rw: Rewriter, n: Node) -> bool:
    """log(softmax(x, axis)) -> log_softmax(x, axis)"""
    p = _producer(rw, n.inputs[0], "softmax") if n.op == "log" else None
    if p is None:
        return False
    rw.emit("log_softmax", [p.inputs[0]], n, out=n.outputs[0], axis=p.attrs["axis"])
    return True


@on("log")
def log_sigmoid_rule(rw: Rewriter, n: Node) -> bool:
    """log(sigmoid(x)) -> -(relu(-x) + log(1 + exp(-|x|)))  (exp only of numbers <= 0)"""
    p = _producer(rw, n.inputs[0], "sigmoid") if n.op == "log" else None
    if p is None:
        return False
    x = p.inputs[0]
    one = rw.emit("constant", [], n, value=np.ones((), x.type.dtype.np))
    softplus_neg = rw.emit("relu", [rw.emit("neg", [x], n)], n)
    e = rw.emit("exp", [rw.emit("neg", [rw.emit("abs", [x], n)], n)], n)
    total = rw.emit("add", [softplus_neg, rw.emit("log", [rw.emit("add", [one, e], n)], n)], n)
    rw.emit("neg", [total], n, out=n.outputs[0])
    return True


@on("binary_cross_entropy")
def bce_logits_rule(rw: Rewriter, n: Node) -> bool:
    """binary_cross_entropy(sigmoid(z), t) -> binary_cross_entropy_with_logits(z, t)"""
    p = _producer(rw, n.inputs[0], "sigmoid") if n.op == "binary_cross_entropy" else None
    if p is None:
        return False
    rw.emit("binary_cross_entropy_with_logits", [p.inputs[0], n.inputs[1]], n,
            out=n.outputs[0], reduction=n.attrs["reduction"])
    return True


def _row_axis(n: Node) -> bool:
    axes = n.attrs["axes"]
    return axes is not None and tuple(axes) in ((1,), (-1,)) and not n.attrs["keepdims"]


def _log_probs(rw: Rewriter, v: Value) -> Value | None:
    """z where v = log_softmax(z, axis=1) (or log(softmax(z)), before the rule above ran)."""
    p = _producer(rw, v, "log_softmax")
    if p is None:
        q = _producer(rw, v, "log")
        p = _producer(rw, q.inputs[0], "softmax") if q is not None else None
    z = p.inputs[0] if p is not None else None
    if z is None or z.type.rank != 2 or p.attrs["axis"] not in (1, -1):
        return None
    return z


def _row_ce(rw: Rewriter, v: Value) -> tuple[Value, Value] | None:
    """(z, t) where v = -reduce_sum(t * log_softmax(z), axis=1), either operand order, the
    minus before or after the sum."""
    neg = _producer(rw, v, "neg")
    s = _producer(rw, neg.inputs[0] if neg else None, "reduce_sum")
    if s is None or not _row_axis(s):
        return None
    m = _producer(rw, s.inputs[0], "mul")
    if m is None:
        return None
    for a, b in (m.inputs, m.inputs[::-1]):
        z = _log_probs(rw, b)
        if z is not None and a.type.shape == z.type.shape and a.type.dtype == z.type.dtype:
            return z, a
    return None


@on("reduce_mean", "reduce_sum")
def softmax_ce_rule(rw: Rewriter, n: Node) -> bool:
    """mean/sum over the batch of -reduce_sum(t * log(softmax(z)), axis=1)
    -> softmax_cross_entropy_onehot(z, t)"""
    if n.op not in ("reduce_mean", "reduce_sum") or n.attrs["keepdims"] or \
            n.attrs["axes"] not in (None, (0,), (-1,), [0]):
        return False
    found = _row_ce(rw, n.inputs[0])
    if found is None:
        return False
    reduction = "mean" if n.op == "reduce_mean" else "sum"
    rw.emit("softmax_cross_entropy_onehot", list(found), n, out=n.outputs[0],
            reduction=reduction)
    return True


RULES: tuple[Callable[[Rewriter, Node], bool], ...] = (
    softmax_ce_rule, log_softmax_rule, log_sigmoid_rule, bce_logits_rule)


class StabilityRewrites(Pass):
    def run(self, g: Graph) -> PassResult:
        return Rewriter(g).sweep(by_op(RULES))
