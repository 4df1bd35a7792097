"""Optimisers as builders of the update subgraph of a training step (see :mod:`.base`)."""
from .base import STEP, Optimizer, UpdateGraph, build_updates, init_state
from .optimizers import OPTIMIZERS, SGD, Adadelta, Adagrad, Adam, Momentum

__all__ = ["Optimizer", "UpdateGraph", "build_updates", "init_state", "STEP",
           "SGD", "Momentum", "Adagrad", "Adadelta", "Adam", "OPTIMIZERS"]
