"""Fully connected layers and the MLP built from them."""
from __future__ import annotations

from typing import Callable, Sequence, Union

import numpy as np

from ..core.builder import Tensor, user_location
from ..core.errors import ShapeError
from ..ops.activations import elu, leaky_relu, relu, sigmoid, softmax, tanh
from ..core.types import dims_equal, shape_str
from .init import Init, get_init
from .layer import Layer, Seed, Sequential

Activation = Union[str, Callable[[Tensor], Tensor], None]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": relu, "leaky_relu": leaky_relu, "elu": elu, "sigmoid": sigmoid, "tanh": tanh,
    "softmax": softmax,
}
_RELU_FAMILY = (relu, leaky_relu, elu)


def get_activation(act: Activation) -> Callable[[Tensor], Tensor] | None:
    """An activation by name (see ACTIVATIONS), a callable, or None / "linear" for none."""
    if act is None or act == "linear":
        return None
    if callable(act):
        return act
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}, "
                         "'linear', None or a callable")
    return ACTIVATIONS[act]


def default_init(act: Callable[[Tensor], Tensor] | None) -> str:
    """He for the ReLU family, Glorot otherwise (sigmoid, tanh, linear outputs)."""
    return "he" if act in _RELU_FAMILY else "glorot"


class Dense(Layer):
    """``act(h @ W + b)`` with W [in, out], b [out]: the column form ``act(W h + b)`` applied to
    a batch of row vectors h [..., in] (any leading dims, symbolic ones included)."""

    kind = "dense"

    def __init__(self, in_features: int, out_features: int, activation: Activation = None,
                 init: str | Init | None = None, bias: bool = True, name: str | None = None,
                 seed: Seed = None):
        super().__init__(name, seed)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.activation = get_activation(activation)
        self.init = get_init(init or default_init(self.activation))
        self.bias = bias

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n_in, n_out = self.in_features, self.out_features
        p = {"W": self.init(rng, (n_in, n_out), n_in, n_out)}
        if self.bias:
            p["b"] = np.zeros(n_out)
        return p

    def forward(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        if x.shape is not None and (not x.shape or
                                    dims_equal(x.shape[-1], self.in_features) is False):
            where = p["W"].name.rsplit(".", 1)[0]
            loc = user_location()
            raise ShapeError(f"{where}: expects inputs [..., {self.in_features}], got "
                             f"{shape_str(x.shape)}" + (f" at {loc}" if loc else ""))
        h = x @ p["W"]
        if "b" in p:
            h = h + p["b"]
        return h if self.activation is None else self.activation(h)


class MLP(Sequential):
    """Dense layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``: ``activation`` on the hidden
    layers, ``out_activation`` on the last (None: linear logits, for the logits losses).
    Layer i is seeded with ``(seed, i)``; a ``name`` prefixes the layers ("enc.dense1")."""

    def __init__(self, sizes: Sequence[int], activation: Activation = "relu",
                 out_activation: Activation = None, init: str | Init | None = None,
                 seed: int | None = 0, name: str | None = None):
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least two sizes (in, out), got {list(sizes)}")
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            act = out_activation if i == len(sizes) - 2 else activation
            layers.append(Dense(n_in, n_out, act, init=init,
                                seed=None if seed is None else (seed, i),
                                name=None if name is None else f"{name}.dense{i + 1}"))
        super().__init__(*layers)
