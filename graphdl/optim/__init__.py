"""Optimisers as builders of the update subgraph of a training step (see :mod:`.base`)."""
from .base import STEP, Optimizer, UpdateGraph, build_updates, init_state
from .optimizers import OPTIMIZERS, SGD, Adadelta, Adagrad, Adam, AdamW, Momentum, RMSprop
from .transforms import UpdateOptions

__all__ = ["Optimizer", "UpdateGraph", "build_updates", "init_state", "STEP",
           "SGD", "Momentum", "Adagrad", "Adadelta", "Adam", "AdamW", "RMSprop", "OPTIMIZERS",
           "UpdateOptions"]
