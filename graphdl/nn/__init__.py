"""Layers that build into a tensor's graph builder: ``Dense(64, 256, "relu")(x)``.

See :mod:`graphdl.nn.layer` for the protocol new layers follow.
"""
from .dense import ACTIVATIONS, MLP, Dense, get_activation
from .init import INITS, glorot_uniform, he_normal
from .layer import Layer, Sequential

__all__ = ["Layer", "Sequential", "Dense", "MLP", "ACTIVATIONS", "get_activation", "INITS",
           "he_normal", "glorot_uniform"]
