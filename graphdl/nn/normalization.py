"""BatchNorm and Dropout layers: different graphs in training and in inference.

Each has a ``training`` flag (default True) read when the layer is called, so one model object
builds a training graph, then (after ``set_training(model, False)``) the inference graph with the
same parameter names:

- BatchNorm keeps ``gamma``, ``beta`` and the running statistics ``running_mean`` and
  ``running_var`` as initializers. In training it normalises with batch statistics and its
  updated running statistics become carried state of the training step; in inference it uses
  the running statistics (ONNX BatchNormalization).
- Dropout in training adds a keep-mask graph input ``dropout<k>.mask`` shaped like its input
  (symbolic batch dim kept), or with ``mask="random"`` draws the mask in the graph (ONNX
  RandomUniformLike; engines then draw different masks); in inference it is the identity.
"""
from __future__ import annotations

import itertools
from typing import Iterable

import numpy as np

from ..core.builder import Tensor
from ..core.errors import GraphError, ShapeError
from ..ops.dropout import dropout, random_keep_mask
from ..ops.normalization import batch_norm, batch_norm_train
from ..core.types import dims_equal, shape_str
from .layer import Layer, Seed, Sequential


class BatchNorm(Layer):
    """Batch normalisation over axis 1 of (N, C) or (N, C, H, W) inputs (PyTorch's momentum
    convention: ``running = (1 - momentum) * running + momentum * batch``)."""

    kind = "batchnorm"

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5,
                 name: str | None = None, seed: Seed = None):
        super().__init__(name, seed)
        self.num_features, self.momentum, self.eps = int(num_features), momentum, eps
        self.training = True

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c = self.num_features
        return {"gamma": np.ones(c), "beta": np.zeros(c), "running_mean": np.zeros(c),
                "running_var": np.ones(c)}

    def forward(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        if x.shape is not None and (len(x.shape) < 2
                                    or dims_equal(x.shape[1], self.num_features) is False):
            raise ShapeError(f"{p['gamma'].name.rsplit('.', 1)[0]}: expects (N, "
                             f"{self.num_features}, ...) input, got {shape_str(x.shape)}")
        args = (x, p["gamma"], p["beta"], p["running_mean"], p["running_var"])
        if not self.training:
            return batch_norm(*args, eps=self.eps)
        y, _, _ = batch_norm_train(*args, momentum=self.momentum, eps=self.eps)
        return y


class Dropout(Layer):
    """Inverted dropout at ``rate`` with a fed keep-mask in training; identity in inference."""

    kind = "dropout"

    def __init__(self, rate: float = 0.5, name: str | None = None, mask: str = "fed",
                 seed: int | None = None):
        super().__init__(name)
        if not 0.0 <= rate < 1.0:
            raise GraphError(f"dropout rate must be in [0, 1), got {rate}")
        if mask not in ("fed", "random"):
            raise GraphError(f"Dropout mask must be 'fed' (a graph input) or 'random' (drawn "
                             f"in the graph), got {mask!r}")
        self.rate, self.mask, self.seed = float(rate), mask, seed
        self.training = True

    def __call__(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return x
        if self.mask == "random":
            return dropout(x, random_keep_mask(x, self.rate, self.seed), self.rate)
        return dropout(x, self._mask_input(x), self.rate)

    def _mask_input(self, x: Tensor) -> Tensor:
        if x.shape is None:
            raise ShapeError("Dropout needs an input of known rank to shape its mask input")
        names = [f"{self.name}.mask"] if self.name else \
            (f"{self.kind}{k}.mask" for k in itertools.count(1))
        for name in names:
            try:
                return x.b.input(name, x.shape, x.dtype)
            except GraphError:
                if self.name:
                    raise
        raise AssertionError("unreachable")


def set_training(model: Layer | Iterable, training: bool) -> None:
    """Sets the ``training`` flag of every layer in ``model``, recursing into Sequential
    layers and an autoencoder's encoder and decoder."""
    if hasattr(model, "training"):
        model.training = training
    for child in _children(model):
        set_training(child, training)


def _children(model: object) -> list:
    if isinstance(model, (list, tuple)):
        return list(model)
    if isinstance(model, Sequential):
        return model.layers
    return [getattr(model, a) for a in ("encoder", "decoder") if hasattr(model, a)]
