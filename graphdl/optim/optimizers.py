"""Optimisers with torch.optim's update rules, as graph code.

Each ``update`` is the per-parameter rule; :func:`graphdl.optim.build_updates` wires inputs and
outputs. Defaults follow torch.optim, so the tests compare against it step by step.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..core.builder import Tensor
from ..ops.elementwise import sqrt
from .base import Optimizer


class SGD(Optimizer):
    """``W' = W - lr * g``; with ``momentum`` > 0 (torch's SGD, dampening 0)
    ``buf' = momentum * buf + g`` and ``W' = W - lr * buf'``. Plain gradient descent and
    minibatch gradient descent are this rule on the whole set or on minibatches."""

    name = "sgd"
    defaults: ClassVar[dict[str, float]] = {"lr": 0.01}

    def __init__(self, lr: float = 0.01, momentum: float = 0.0):
        # without momentum there is no buffer to carry and no momentum input: the instance
        # narrows the class's hyperparameters and slots before the base class reads them
        self.use_momentum = momentum != 0.0
        if self.use_momentum:
            self.defaults = {"lr": 0.01, "momentum": 0.9}
            self.slots = ("momentum_buffer",)
            super().__init__(lr=lr, momentum=momentum)
        else:
            super().__init__(lr=lr)

    def update(self, p, g, state, hp, step):
        if not self.use_momentum:
            return p - hp["lr"] * g, {}
        buf = hp["momentum"] * state["momentum_buffer"] + g
        return p - hp["lr"] * buf, {"momentum_buffer": buf}


class Adagrad(Optimizer):
    """``sum' = sum + g^2``; ``W' = W - lr * g / (sqrt(sum') + eps)``: each weight's step
    shrinks with the gradient it has seen."""

    name = "adagrad"
    defaults: ClassVar[dict[str, float]] = {"lr": 0.01, "eps": 1e-10}
    slots = ("sum",)

    def __init__(self, lr: float = 0.01, eps: float = 1e-10, initial_accumulator: float = 0.0):
        super().__init__(lr=lr, eps=eps)
        self.initial_accumulator = float(initial_accumulator)

    def init_slot(self, slot: str, param: np.ndarray) -> np.ndarray:
        return np.full_like(param, self.initial_accumulator)

    def update(self, p, g, state, hp, step):
        acc = state["sum"] + g * g
        return p - hp["lr"] * g / (sqrt(acc) + hp["eps"]), {"sum": acc}


class Adadelta(Optimizer):
    """Zeiler's rule: running averages of g^2 and of the squared steps set a unit-consistent
    step ``delta = sqrt(acc_delta + eps) / sqrt(square_avg' + eps) * g``; ``W' = W - lr * delta``
    (lr 1.0 is the paper's rule)."""

    name = "adadelta"
    defaults: ClassVar[dict[str, float]] = {"lr": 1.0, "rho": 0.9, "eps": 1e-6}
    slots = ("square_avg", "acc_delta")

    def __init__(self, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6):
        super().__init__(lr=lr, rho=rho, eps=eps)

    def shared(self, hp, step):
        return {"1-rho": 1.0 - hp["rho"]}

    def update(self, p, g, state, hp, step):
        rho, eps = hp["rho"], hp["eps"]
        sq = rho * state["square_avg"] + hp["1-rho"] * (g * g)
        delta = sqrt(state["acc_delta"] + eps) / sqrt(sq + eps) * g
        acc = rho * state["acc_delta"] + hp["1-rho"] * (delta * delta)
        return p - hp["lr"] * delta, {"square_avg": sq, "acc_delta": acc}


class Adam(Optimizer):
    """Moments ``m' = b1 m + (1 - b1) g``, ``v' = b2 v + (1 - b2) g^2`` with bias correction by
    the step count t: ``W' = W - lr / (1 - b1^t) * m' / (sqrt(v') / sqrt(1 - b2^t) + eps)``."""

    name = "adam"
    defaults: ClassVar[dict[str, float]] = {"lr": 0.001, "beta1": 0.9, "beta2": 0.999,
                                            "eps": 1e-8}
    slots = ("exp_avg", "exp_avg_sq")
    counts_steps = True

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, eps=eps)

    def shared(self, hp, step: Tensor):
        b1, b2 = hp["beta1"], hp["beta2"]
        return {"1-beta1": 1.0 - b1, "1-beta2": 1.0 - b2,
                "step_size": hp["lr"] / (1.0 - b1 ** step),
                "1/sqrt(bc2)": 1.0 / sqrt(1.0 - b2 ** step)}

    def update(self, p, g, state, hp, step: Tensor):
        m = hp["beta1"] * state["exp_avg"] + hp["1-beta1"] * g
        v = hp["beta2"] * state["exp_avg_sq"] + hp["1-beta2"] * (g * g)
        denom = sqrt(v) * hp["1/sqrt(bc2)"] + hp["eps"]
        return p - hp["step_size"] * (m / denom), {"exp_avg": m, "exp_avg_sq": v}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter; torch.optim.AdamW): first
    ``W <- W * (1 - lr * weight_decay)``, then Adam's step."""

    name = "adamw"
    defaults: ClassVar[dict[str, float]] = {**Adam.defaults, "weight_decay": 0.01}
    decoupled_decay = True

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01):
        Optimizer.__init__(self, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                           weight_decay=weight_decay)

    def update(self, p, g, state, hp, step: Tensor):
        return super().update(p * (1.0 - hp["lr"] * hp["weight_decay"]), g, state, hp, step)


class RMSprop(Optimizer):
    """``sq' = alpha sq + (1 - alpha) g^2``; ``W' = W - lr * g / (sqrt(sq') + eps)``; with
    ``momentum`` > 0 (torch's RMSprop) ``buf' = momentum buf + g / (sqrt(sq') + eps)`` and
    ``W' = W - lr * buf'``."""

    name = "rmsprop"
    defaults: ClassVar[dict[str, float]] = {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}
    slots = ("square_avg",)

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0):
        self.use_momentum = momentum != 0.0
        if self.use_momentum:  # as SGD: the instance narrows the class's inputs and slots
            self.defaults = {**RMSprop.defaults, "momentum": 0.0}
            self.slots = ("square_avg", "momentum_buffer")
            super().__init__(lr=lr, alpha=alpha, eps=eps, momentum=momentum)
        else:
            super().__init__(lr=lr, alpha=alpha, eps=eps)

    def shared(self, hp, step):
        return {"1-alpha": 1.0 - hp["alpha"]}

    def update(self, p, g, state, hp, step):
        sq = hp["alpha"] * state["square_avg"] + hp["1-alpha"] * (g * g)
        scaled = g / (sqrt(sq) + hp["eps"])
        if not self.use_momentum:
            return p - hp["lr"] * scaled, {"square_avg": sq}
        buf = hp["momentum"] * state["momentum_buffer"] + scaled
        return p - hp["lr"] * buf, {"square_avg": sq, "momentum_buffer": buf}


def Momentum(lr: float = 0.01, momentum: float = 0.9) -> SGD:  # noqa: N802 - a named preset
    """SGD with momentum."""
    return SGD(lr=lr, momentum=momentum)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adagrad": Adagrad, "adadelta": Adadelta,
              "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}
