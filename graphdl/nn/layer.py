"""The layer protocol: a recipe for parameters plus the ops that use them, and Sequential.

There is no current graph: calling a layer on a Tensor builds into that tensor's builder. The
first call on a builder adds the layer's parameters there as named initializers ("dense1.W",
"dense1.b"); later calls on the same builder reuse them (shared weights). An unnamed layer takes
the first free name ``<kind><k>``. Initial values come from ``numpy.random.default_rng(seed)``
(a seed of None is derived from the layer's name), so a model builds the same values on every
builder and in every run, and two engines can be compared from the same start.

A new layer (Conv2d, LSTM, BatchNorm, ...) subclasses :class:`Layer`, sets ``kind`` and defines
``init_params`` (float64 arrays by local name) and ``forward``.
"""
from __future__ import annotations

import itertools
import weakref
import zlib
from typing import Callable, ClassVar, Sequence, Union

import numpy as np

from ..core.builder import GraphBuilder, Tensor
from ..core.errors import GraphError
from ..core.types import DType

Seed = Union[int, Sequence[int], None]


class Layer:
    """Base class of the layers; see the module docstring for the protocol."""

    kind: ClassVar[str] = "layer"

    def __init__(self, name: str | None = None, seed: Seed = None):
        self.name = name
        self.seed = seed
        self._built: "weakref.WeakKeyDictionary[GraphBuilder, dict[str, Tensor]]" = \
            weakref.WeakKeyDictionary()

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Initial parameter values by local name ("W", "b"); none by default."""
        return {}

    def forward(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x, self.params_in(x.b, param_dtype(x)))

    def params_in(self, b: GraphBuilder, dtype: DType) -> dict[str, Tensor]:
        """This layer's parameters on ``b`` by local name, created there on first use."""
        if b not in self._built:
            self._built[b] = self._create(b, dtype)
        return self._built[b]

    def parameters(self, b: GraphBuilder) -> dict[str, Tensor]:
        """The parameters built on ``b`` so far, by full name ("dense1.W")."""
        return {t.name: t for t in self._built.get(b, {}).values()}

    def _create(self, b: GraphBuilder, dtype: DType) -> dict[str, Tensor]:
        if self.name is not None:
            return self._add(b, self.name, dtype)
        for k in itertools.count(1):
            made = self._add(b, f"{self.kind}{k}", dtype, probe=True)
            if made is not None:
                return made
        raise AssertionError("unreachable")

    def _add(self, b: GraphBuilder, prefix: str, dtype: DType,
             probe: bool = False) -> dict[str, Tensor] | None:
        """Adds the parameters under ``prefix``; with ``probe``, None if the name is taken."""
        seed = self.seed if self.seed is not None else zlib.crc32(prefix.encode())
        arrays = self.init_params(np.random.default_rng(seed))
        out: dict[str, Tensor] = {}
        for i, (local, arr) in enumerate(arrays.items()):
            try:
                out[local] = b.param(f"{prefix}.{local}", np.asarray(arr, dtype.np))
            except GraphError:
                if probe and i == 0:
                    return None
                raise
        return out


def param_dtype(x: Tensor) -> DType:
    """Parameters follow a float input's dtype (float64 for gradient checks), else float32."""
    return x.dtype if x.dtype.is_float else DType.float32


class Sequential(Layer):
    """Layers (or plain functions such as ``graphdl.relu``) applied one after another."""

    kind = "sequential"

    def __init__(self, *layers: Callable[[Tensor], Tensor]):
        super().__init__()
        self.layers = list(layers)

    def __call__(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self, b: GraphBuilder) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for layer in self.layers:
            if isinstance(layer, Layer):
                out.update(layer.parameters(b))
        return out
