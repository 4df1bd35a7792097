"""Transformer layers: Embedding, PositionEmbedding, LayerNorm, GELU, MultiHeadAttention,
TransformerEncoderLayer (pre- or post-norm) and Residual, the way to write a skip connection::

    block = Sequential(Residual(Sequential(LayerNorm(64), MultiHeadAttention(64, 4))),
                       Residual(Sequential(LayerNorm(64), Dense(64, 256, GELU()),
                                           Dense(256, 64))))

Sequences are [N, S, D] (batch first, as PyTorch's ``batch_first=True``). A mask given to
MultiHeadAttention is bool (True: attend) or additive, broadcast to [N, heads, S, S]; a key
padding mask [N, S] becomes ``key_padding_mask(keep)`` = [N, 1, 1, S].
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..ops.attention import attention
from ..ops.gelu import gelu
from ..ops.layer_norm import layer_norm
from ..ops.gather import gather
from ..ops.shape import reshape, transpose
from ..core.types import DType, dims_equal, shape_str
from .dense import Dense
from .layer import Layer, Seed, param_dtype


class GELU:
    """The GELU activation as a callable (``approximate="tanh"`` for GPT-2's form)."""

    def __init__(self, approximate: str = "none"):
        self.approximate = approximate

    def __call__(self, x: Tensor) -> Tensor:
        return gelu(x, self.approximate)


class Residual:
    """``x + inner(x)``: a skip connection around any layer or function."""

    def __init__(self, inner: Callable[[Tensor], Tensor]):
        self.inner = inner

    def __call__(self, x: Tensor) -> Tensor:
        return x + self.inner(x)

    def parameters(self, b) -> dict[str, Tensor]:
        return self.inner.parameters(b) if isinstance(self.inner, Layer) else {}


class Embedding(Layer):
    """Rows of a [num, dim] table looked up by int ids (Gather; its gradient is a
    scatter-add of the rows' deltas, never a one-hot product)."""

    kind = "embedding"

    def __init__(self, num_embeddings: int, dim: int, std: float = 1.0,
                 dtype: str = "float32", name: str | None = None, seed: Seed = None):
        super().__init__(name, seed)
        self.num, self.dim, self.std = int(num_embeddings), int(dim), float(std)
        self.dtype = DType.of(dtype)

    def __call__(self, ids: Tensor) -> Tensor:
        return self.forward(ids, self.params_in(ids.b, self.dtype))

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"W": rng.normal(0.0, self.std, (self.num, self.dim))}

    def forward(self, ids: Tensor, p: dict[str, Tensor]) -> Tensor:
        return gather(p["W"], ids, axis=0)


class PositionEmbedding(Layer):
    """Adds a learned [length, dim] table to [N, length, dim] token embeddings."""

    kind = "pos"

    def __init__(self, length: int, dim: int, std: float = 0.02, name: str | None = None,
                 seed: Seed = None):
        super().__init__(name, seed)
        self.length, self.dim, self.std = int(length), int(dim), float(std)

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"P": rng.normal(0.0, self.std, (self.length, self.dim))}

    def forward(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        if x.shape is not None and (len(x.shape) != 3 or any(
                dims_equal(a, c) is False for a, c in zip(x.shape[1:], (self.length, self.dim)))):
            raise ShapeError(f"{_owner(p['P'])}: expects [N, {self.length}, {self.dim}], got "
                             f"{shape_str(x.shape)}")
        return x + p["P"]


class LayerNorm(Layer):
    """Layer normalisation over the last axis, with a gain (ones) and a bias (zeros)."""

    kind = "layernorm"

    def __init__(self, dim: int, eps: float = 1e-5, name: str | None = None):
        super().__init__(name)
        self.dim, self.eps = int(dim), float(eps)

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"gamma": np.ones(self.dim), "beta": np.zeros(self.dim)}

    def forward(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        _need_last(x, self.dim, p["gamma"])
        return layer_norm(x, p["gamma"], p["beta"], -1, self.eps)


def key_padding_mask(keep: Tensor) -> Tensor:
    """[N, S] bool (True: a real token) -> [N, 1, 1, S], the mask MultiHeadAttention takes."""
    return reshape(keep, [0, 1, 1, -1])


class MultiHeadAttention(Layer):
    """Self-attention over [N, S, D]: ``heads`` heads of D / heads dims, projections Wq, Wk,
    Wv, Wo [D, D] with biases; ``causal`` lets position i attend to positions <= i only."""

    kind = "mha"

    def __init__(self, dim: int, heads: int, causal: bool = False, name: str | None = None,
                 seed: Seed = None):
        super().__init__(name, seed)
        if dim % heads:
            raise ValueError(f"{dim} model dims do not split into {heads} heads")
        self.dim, self.heads, self.causal = int(dim), int(heads), bool(causal)

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        d = self.dim
        a = np.sqrt(3.0 / d)  # uniform with variance 1 / d
        p = {f"W{n}": rng.uniform(-a, a, (d, d)) for n in "qkvo"}
        p.update({f"b{n}": np.zeros(d) for n in "qkvo"})
        return p

    def __call__(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.forward(x, self.params_in(x.b, param_dtype(x)), mask)

    def forward(self, x: Tensor, p: dict[str, Tensor], mask: Tensor | None = None) -> Tensor:
        _need_last(x, self.dim, p["Wq"])
        if x.shape is not None and len(x.shape) != 3:
            raise ShapeError(f"{_owner(p['Wq'])}: expects [N, S, {self.dim}], got "
                             f"{shape_str(x.shape)}")
        q, k, v = (self._split(x @ p[f"W{n}"] + p[f"b{n}"]) for n in "qkv")
        y = attention(q, k, v, mask, is_causal=self.causal)
        y = reshape(transpose(y, [0, 2, 1, 3]), [0, 0, self.dim])
        return y @ p["Wo"] + p["bo"]

    def _split(self, t: Tensor) -> Tensor:
        """[N, S, D] -> [N, heads, S, D / heads]."""
        return transpose(reshape(t, [0, 0, self.heads, self.dim // self.heads]), [0, 2, 1, 3])


class TransformerEncoderLayer(Layer):
    """Self-attention then a feed-forward net (dim -> ff -> dim, GELU by default), each with
    a skip connection and a LayerNorm: before each sub-layer (``norm_first``, pre-norm, as
    GPT-2 and ViT) or after each sum (post-norm, as the original transformer and PyTorch's
    default)."""

    kind = "encoder"

    def __init__(self, dim: int, heads: int, ff: int, norm_first: bool = True,
                 activation: Callable[[Tensor], Tensor] | None = None, causal: bool = False,
                 eps: float = 1e-5, name: str | None = None, seed: int = 0):
        super().__init__(name)
        sub = (lambda s: f"{name}.{s}") if name else (lambda s: None)
        self.norm_first = norm_first
        self.attn = MultiHeadAttention(dim, heads, causal, name=sub("attn"), seed=(seed, 0))
        self.ln1, self.ln2 = LayerNorm(dim, eps, sub("ln1")), LayerNorm(dim, eps, sub("ln2"))
        self.ff1 = Dense(dim, ff, activation or GELU(), init="glorot", name=sub("ff1"),
                         seed=(seed, 1))
        self.ff2 = Dense(ff, dim, init="glorot", name=sub("ff2"), seed=(seed, 2))

    def __call__(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        ffn = lambda h: self.ff2(self.ff1(h))  # noqa: E731 - the two dense layers as one step
        if self.norm_first:
            x = x + self.attn(self.ln1(x), mask)
            return x + ffn(self.ln2(x))
        x = self.ln1(x + self.attn(x, mask))
        return self.ln2(x + ffn(x))

    def parameters(self, b) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for layer in (self.attn, self.ln1, self.ln2, self.ff1, self.ff2):
            out.update(layer.parameters(b))
        return out


def _owner(param: Tensor) -> str:
    return param.name.rsplit(".", 1)[0]


def _need_last(x: Tensor, dim: int, param: Tensor) -> None:
    if x.shape is not None and (not x.shape or dims_equal(x.shape[-1], dim) is False):
        raise ShapeError(f"{_owner(param)}: expects inputs [..., {dim}], got "
                         f"{shape_str(x.shape)}")
