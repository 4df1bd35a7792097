"""Constant folding: a node whose inputs are all constants is evaluated once by its kernel
and becomes a constant, when its result is small (``max_elements``; a big folded tensor would
bloat the graph and the exported model more than it saves). Random ops and initializers
(trainable parameters) are never folded."""
from __future__ import annotations

import numpy as np

from graphdl.core.ir import Graph, Node
from graphdl.core.registry import get_op

from ._rewrite import Rewriter
from .manager import Pass, PassResult


class ConstantFolding(Pass):
    def __init__(self, max_elements: int = 1024):
        self.max_elements = max_elements

    def run(self, g: Graph) -> PassResult:
        rw = Rewriter(g)
        limit = self.max_elements

        def rule(rw: Rewriter, n: Node) -> bool:
            if n.op == "constant" or len(n.outputs) != 1:
                return False
            op = get_op(n.op)
            if op.kernel is None or "random" in op.traits:
                return False
            args = [None if v is None else rw.const_of(v) for v in n.inputs]
            if any(a is None for a, v in zip(args, n.inputs) if v is not None):
                return False
            if any(a is not None and a.size > limit for a in args):
                return False
            out = n.outputs[0]
            try:
                with np.errstate(all="ignore"):  # inf/nan fold as the kernel makes them
                    value = np.asarray(op.kernel(*args, **n.attrs))
            except Exception:  # noqa: BLE001 - left for the engine to report at run time
                return False
            t = out.type
            if value.size > limit or value.dtype != t.dtype.np or t.shape != value.shape:
                return False
            rw.emit("constant", [], n, out=out, value=value)
            return True

        return rw.sweep(rule)
