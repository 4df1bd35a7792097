"""Inference batch normalisation with frozen statistics, folded away.

``batch_norm(x, gamma, beta, mean, var)`` is ``x * s + t`` per channel with
``s = gamma / sqrt(var + eps)`` and ``t = beta - mean * s``. When gamma, beta, mean and var are
frozen (initializers or constants: an imported model's weights), that is computed once here:

- after a ``conv`` whose weight (and bias) are frozen too and whose output only the batch norm
  reads, the conv takes ``w * s`` (per output channel) and bias ``(b - mean) * s + beta``, and
  the batch norm disappears: no pass over the activations at all;
- elsewhere (DenseNet's batch norm after a concat) it becomes ``x * s + t``: two elementwise
  ops, which :class:`~passes.fusion.ElementwiseFusion` merges with the activation after them,
  instead of its decomposition's four passes and a sqrt per run.

A ``mul`` or ``add`` by a frozen per-channel vector (Caffe2 exports its batch norm as
BatchNormalization, then Mul and Add by unsqueezed vectors) folds the same way: into the conv
before it, or into the scale-and-shift made before it.

The new tensors are computed in float64 and rounded to the model's dtype, so the result
equals the unfolded graph up to rounding. They are initializers when a tensor they replace was
one (constants otherwise); the replaced ones are dropped once nothing reads them. Training
batch norm (``batch_norm_train``) and statistics that are graph inputs (as
:func:`graphdl.training.minibatch.params_as_inputs` makes them for training) are never
folded.
"""
from __future__ import annotations

import numpy as np

from graphdl.core.ir import Graph, Node, Value
from graphdl.core.types import DType, TensorType, same_type

from ._rewrite import Rewriter
from .manager import Pass, PassResult


class FoldBatchNorm(Pass):
    def run(self, g: Graph) -> PassResult:
        fold = _Folder(g)
        res = fold.rw.sweep(fold.rule)
        if not res.changed:
            return res
        out = res.graph
        read = {v for n in out.nodes for v in n.inputs} | set(out.outputs)
        every = {**out.initializers, **fold.made}
        inits = {v: a for v, a in every.items() if v in read or v not in fold.spent}
        return PassResult(out.replace(initializers=inits), True)


class _Folder:
    """The sweep's state: the rewriter, the original graph's uses, and the initializers made."""

    def __init__(self, g: Graph):
        self.rw = Rewriter(g)
        self.inits = g.initializers
        self.uses = g.uses
        self.outs = set(g.outputs)
        self.made: dict[Value, np.ndarray] = {}
        self.spent: set[Value] = set()  # initializers a fold replaced (dropped if now unread)
        #: the output of each scale-and-shift made -> (its input, scale, shift, as_init)
        self.affines: dict[Value, tuple[Value, np.ndarray, np.ndarray, bool]] = {}

    def frozen(self, v: Value | None) -> np.ndarray | None:
        """The value of an initializer or a constant node, else None."""
        if v is None:
            return None
        if self.is_init(v):
            return self.made.get(v, self.inits.get(v))
        return self.rw.const_of(v)

    def is_init(self, v: Value | None) -> bool:
        return v in self.inits or v in self.made

    def new_tensor(self, like: Node, prefix: str, value: np.ndarray, as_init: bool) -> Value:
        """A new initializer (``as_init``) or constant node holding ``value``."""
        if not as_init:
            return self.rw.emit("constant", [], like, value=value)
        v = Value(self.rw.fresh(prefix), TensorType(DType.of(value.dtype), value.shape))
        self.made[v] = value
        self.rw.changed = True
        return v

    def rule(self, rw: Rewriter, n: Node) -> bool:
        if n.op == "batch_norm":
            return self.batch_norm(n)
        if n.op in ("mul", "add"):
            return self.channel_op(n)
        return False

    def batch_norm(self, n: Node) -> bool:
        stats = [self.frozen(v) for v in n.inputs[1:5]]
        if any(s is None for s in stats):
            return False
        gamma, beta, mean, var = (s.astype(np.float64) for s in stats)
        scale = gamma / np.sqrt(var + n.attrs["eps"])
        shift = beta - mean * scale
        any_init = any(self.is_init(v) for v in n.inputs[1:5])
        self.spent.update(n.inputs[1:5])
        return self.into_conv(n, n.inputs[0], scale, shift, any_init) or \
            self.affine(n, scale, shift, any_init)

    def channel_op(self, n: Node) -> bool:
        """conv(...) * k or conv(...) + k, k a frozen per-channel vector: into the conv."""
        for x, k in (n.inputs, n.inputs[::-1]):
            found = self.channel_vector(k, x, n.outputs[0])
            if found is None:
                continue
            vec, source = found
            scale, shift = (vec, None) if n.op == "mul" else (None, vec)
            init = self.is_init(source)
            if self.into_conv(n, x, scale, shift, init) or \
                    self.into_affine(n, x, scale, shift, init):
                self.spent.add(source)
                return True
        return False

    def into_affine(self, n: Node, x: Value, scale: np.ndarray | None,
                    shift: np.ndarray | None, any_init: bool) -> bool:
        """A scale-and-shift this pass made, then ``* scale + shift`` (read only by ``n``):
        one scale-and-shift."""
        prev = self.affines.get(x)
        if prev is None or x in self.outs or len(self.uses.get(x, ())) != 1:
            return False
        src, s, t, init = prev
        add = self.rw.prod[x]
        mul = self.rw.prod[add.inputs[0]]
        self.spent.update((mul.inputs[1], add.inputs[1]))
        self.rw.drop(add)
        self.rw.drop(mul)
        if scale is not None:
            s, t = s * scale, t * scale
        if shift is not None:
            t = t + shift
        return self.affine(n, s, t, init or any_init, src)

    def channel_vector(self, k: Value, x: Value, out: Value
                       ) -> tuple[np.ndarray, Value] | None:
        """(k as a float64 [C] vector, the frozen value it comes from) when k varies along
        x's channel axis only (directly, or through a reshape/unsqueeze of a frozen tensor)
        and broadcasting it leaves x's type as it is."""
        shape, rank = k.type.shape, x.type.rank
        if shape is None or rank is None or rank < 2 or len(shape) > rank:
            return None
        p = self.rw.prod.get(x)
        if not same_type(out.type, x.type) or (x not in self.affines and (
                p is None or p.op != "conv" or p.attrs.get("activation") is not None)):
            return None
        c = x.type.shape[1]
        lead = len(shape) - (rank - 1)  # the channel axis's position in k's shape
        if not all(isinstance(d, int) for d in shape) or not isinstance(c, int):
            return None
        if any(d != 1 for i, d in enumerate(shape) if i != lead) or \
                (lead >= 0 and shape[lead] not in (1, c)):
            return None
        source, p = k, self.rw.prod.get(k)
        if self.frozen(k) is None and p is not None and p.op in ("reshape", "unsqueeze"):
            source = p.inputs[0]
        value = self.frozen(source)
        if value is None or value.size != int(np.prod(shape)):
            return None
        return np.broadcast_to(value.astype(np.float64).reshape(-1), (c,)), source

    def into_conv(self, n: Node, x: Value, scale: np.ndarray | None,
                  shift: np.ndarray | None, any_init: bool) -> bool:
        """conv(x, w, b) followed by ``* scale + shift`` per channel (read only by ``n``)
        => conv(x, w * scale, b * scale + shift)."""
        p = self.rw.prod.get(x)
        if p is None or p.op != "conv" or x in self.outs or len(self.uses.get(x, ())) != 1:
            return False
        if p.attrs.get("activation") is not None:
            return False  # the scale and shift would act after the activation
        w_v, b_v = p.inputs[1], p.inputs[2] if len(p.inputs) > 2 else None
        w, b = self.frozen(w_v), self.frozen(b_v)
        if w is None or (b_v is not None and b is None):
            return False
        dt = w.dtype
        as_init = any_init or self.is_init(w_v) or self.is_init(b_v)
        w_out = w_v
        if scale is not None:
            per_out = scale.reshape((-1,) + (1,) * (w.ndim - 1))
            w_out = self.new_tensor(n, f"{w_v.name}_bn", (w.astype(np.float64) * per_out)
                                    .astype(dt), as_init)
        bias = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
        bias = (bias if scale is None else bias * scale) + (0.0 if shift is None else shift)
        b_out = self.new_tensor(n, f"{w_v.name}_bn_bias", bias.astype(dt), as_init)
        self.spent.update(p.inputs[1:])
        self.rw.drop(p)
        self.rw.emit("conv", [p.inputs[0], w_out, b_out], p, out=n.outputs[0], **p.attrs)
        return True

    def affine(self, n: Node, scale: np.ndarray, shift: np.ndarray, as_init: bool,
               x: Value | None = None) -> bool:
        """batch_norm(x) => x * s + t with s, t shaped [C, 1, ...] against x."""
        x = n.inputs[0] if x is None else x
        if x.type.rank is None or x.type.rank < 2:
            return False
        shape = (-1,) + (1,) * (x.type.rank - 2)
        dt = x.type.dtype.np
        s = self.new_tensor(n, f"{n.name}_scale", scale.reshape(shape).astype(dt), as_init)
        t = self.new_tensor(n, f"{n.name}_shift", shift.reshape(shape).astype(dt), as_init)
        y = self.rw.emit("mul", [x, s], n)
        self.rw.emit("add", [y, t], n, out=n.outputs[0])
        self.affines[n.outputs[0]] = (x, scale, shift, as_init)
        return True
