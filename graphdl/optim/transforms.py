"""What happens to gradients between the backward pass and the optimiser's rule, as graph code.

:class:`UpdateOptions` asks for any of: gradient accumulation over ``accumulate`` micro-batches
(the update applies on every k-th step, with the mean of the k gradients; parameters and
optimiser state stay unchanged in between), global-norm clipping (torch's
``clip_grad_norm_``: every gradient scaled by ``min(1, clip_norm / (norm + 1e-6))``), L2 weight
decay (``g + weight_decay * p``, torch.optim's ``weight_decay``; AdamW decays the weights
itself, decoupled) and per-parameter learning-rate multipliers (parameter groups, by name
glob). Weight decay and the clipping norm are scalar hyperparameter inputs like ``lr``, so they
stay changeable.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Mapping

from ..core.builder import GraphBuilder, Tensor
from ..core.errors import GraphError
from ..ops.elementwise import minimum, sqrt, where
from ..ops.reduce import reduce_sum

ACCUM_COUNT = "accum.count"
ACCUM_SLOT = "grad_acc"


@dataclass
class UpdateOptions:
    """Options of the update around the optimiser's own rule (see the module docstring)."""

    weight_decay: float = 0.0
    clip_norm: float | None = None
    lr_scale: Mapping[str, float] = field(default_factory=dict)
    accumulate: int = 1

    def __post_init__(self) -> None:
        if int(self.accumulate) < 1:
            raise GraphError(f"accumulate must be a positive step count, got {self.accumulate}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise GraphError(f"clip_norm must be positive, got {self.clip_norm}")
        if self.weight_decay < 0:
            raise GraphError(f"weight_decay must be >= 0, got {self.weight_decay}")

    def scale_of(self, name: str) -> float:
        """The learning-rate multiplier of parameter ``name``: the first ``lr_scale`` glob
        matching it, else 1."""
        for glob, factor in self.lr_scale.items():
            if fnmatch.fnmatchcase(name, glob):
                return float(factor)
        return 1.0

    def check_groups(self, names: list[str]) -> None:
        """Refuses an ``lr_scale`` glob that matches no trained parameter."""
        for glob in self.lr_scale:
            if not any(fnmatch.fnmatchcase(n, glob) for n in names):
                raise GraphError(f"learning-rate group {glob!r} matches no trained parameter; "
                                 f"they are {names}")

    def hyperparams(self, decoupled: bool) -> dict[str, float]:
        """The extra scalar inputs: ``weight_decay`` (unless the optimiser owns it) and
        ``clip_norm``, each only when asked for."""
        out = {}
        if self.weight_decay and not decoupled:
            out["weight_decay"] = float(self.weight_decay)
        if self.clip_norm is not None:
            out["clip_norm"] = float(self.clip_norm)
        return out


def clip_by_global_norm(grads: dict[str, Tensor], max_norm: Tensor) -> dict[str, Tensor]:
    """Every gradient times ``min(1, max_norm / (||all gradients|| + 1e-6))``."""
    total = None
    for g in grads.values():
        s = reduce_sum(g * g)
        total = s if total is None else total + s
    coef = minimum(max_norm / (sqrt(total) + 1e-6), 1.0)
    return {n: g * coef for n, g in grads.items()}


def l2_decay(params: Mapping[str, Tensor], grads: dict[str, Tensor],
             wd: Tensor) -> dict[str, Tensor]:
    """``g + wd * p`` for every parameter (torch.optim's coupled weight decay)."""
    return {n: g + wd * params[n] for n, g in grads.items()}


@dataclass
class Accumulator:
    """Gradient accumulation state on a builder: ``apply`` is true on every k-th step."""

    k: int
    count: Tensor
    next_count: Tensor
    apply: Tensor

    @classmethod
    def build(cls, b: GraphBuilder, k: int) -> "Accumulator":
        count = b.input(ACCUM_COUNT, (), "int64")
        bumped = count + b.const(1, "int64")
        apply = bumped.eq(b.const(k, "int64"))
        return cls(k, count, where(apply, b.const(0, "int64"), bumped), apply)

    def mean(self, acc: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        """(the gradient to apply, the next accumulator value) for one parameter."""
        total = acc + g
        return total * (1.0 / self.k), where(self.apply, 0.0, total)

    def hold(self, new: Tensor, old: Tensor) -> Tensor:
        """``new`` on an applying step, else ``old`` unchanged."""
        return where(self.apply, new, old)

    def step_count(self, step: Tensor) -> tuple[Tensor, Tensor]:
        """(the next optimiser step counter, this update's step number as int64)."""
        bumped = step + self.count.b.const(1, "int64")
        return where(self.apply, bumped, step), bumped
