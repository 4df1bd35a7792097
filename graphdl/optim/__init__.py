"""Optimisers as builders of the update subgraph of a training step (see :mod:`.base`)."""
from .base import STEP, Optimizer, UpdateGraph, build_updates, hyperparam_feeds, init_state
from .optimizers import OPTIMIZERS, SGD, Adadelta, Adagrad, Adam, Momentum

__all__ = ["Optimizer", "UpdateGraph", "build_updates", "init_state", "hyperparam_feeds", "STEP",
           "SGD", "Momentum", "Adagrad", "Adadelta", "Adam", "OPTIMIZERS"]
