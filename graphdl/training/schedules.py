"""Learning-rate schedules: a factor for each step, which the trainer multiplies into ``lr``.

The training step takes ``lr`` as a scalar input, so a schedule changes a feed per step and
never the exported model. Each schedule maps the 0-based index of the step about to run to a
factor of the base learning rate; :func:`make_schedule` adds a linear warm-up in front.
"""
from __future__ import annotations

import math
from typing import Callable

from ..core.errors import GraphError

Schedule = Callable[[int], float]
NAMES = ("constant", "step", "cosine")


def make_schedule(name: str = "constant", total_steps: int = 1, warmup: int = 0,
                  step_size: int = 1, gamma: float = 0.1, min_factor: float = 0.0) -> Schedule:
    """``constant``; ``step`` (times ``gamma`` every ``step_size`` steps, torch's StepLR);
    ``cosine`` (from 1 down to ``min_factor`` over the steps after warm-up, torch's
    CosineAnnealingLR). ``warmup`` > 0 first ramps linearly: step t < warmup runs at
    ``(t + 1) / warmup``."""
    if name not in NAMES:
        raise GraphError(f"unknown schedule {name!r}; expected one of {list(NAMES)}")
    if warmup < 0 or step_size < 1 or total_steps < 1:
        raise GraphError(f"schedule needs warmup >= 0, step_size >= 1 and total_steps >= 1; "
                         f"got {warmup}, {step_size}, {total_steps}")
    span = max(total_steps - warmup, 1)

    def base(t: int) -> float:
        if name == "step":
            return gamma ** (t // step_size)
        if name == "cosine":
            return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * min(t, span)
                                                                        / span))
        return 1.0

    def factor(t: int) -> float:
        return (t + 1) / warmup if t < warmup else base(t - warmup)

    return factor
