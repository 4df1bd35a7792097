"""Weight initialisers: seeded, float64 draws that a layer casts to its dtype.

He (variance 2 / fan_in) keeps the activations' scale through ReLU-family layers, which zero
half their inputs; Glorot (variance 2 / (fan_in + fan_out)) suits sigmoid and tanh, which are
linear near 0 and would saturate under He's larger weights.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Init = Callable[[np.random.Generator, tuple[int, ...], int, int], np.ndarray]


def he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int,
              fan_out: int) -> np.ndarray:
    """N(0, 2 / fan_in)."""
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int,
                   fan_out: int) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), i.e. variance 2 / (fan_in + fan_out)."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape)


INITS: dict[str, Init] = {"he": he_normal, "glorot": glorot_uniform}


def get_init(init: str | Init) -> Init:
    """An initialiser by name ('he', 'glorot') or the callable itself."""
    if callable(init):
        return init
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {sorted(INITS)} or a callable")
    return INITS[init]
