"""Checks and batching for training data: what Trainer.fit and ``graphdl train`` share.

Training on arrays of different lengths would silently drop or misalign rows, and a metric
that is not a scalar cannot be averaged per epoch: both are refused up front, naming the arrays
or outputs at fault.
"""
from __future__ import annotations

from typing import Iterator, Mapping, Sequence

import numpy as np

from ..core.errors import GraphError
from .step import TrainStep


def data_length(data: Mapping[str, np.ndarray], names: Sequence[str], where: str) -> int:
    """The common length of the arrays ``names`` in ``data``."""
    missing = [n for n in names if n not in data]
    if missing:
        raise GraphError(f"{where}: no data for the step's inputs {missing} (it has "
                         f"{sorted(data)})")
    lengths = {n: len(np.asarray(data[n])) if np.ndim(data[n]) else 0 for n in names}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{n}: {k}" for n, k in lengths.items())
        raise GraphError(f"{where}: the arrays differ in length ({shown}); every input needs "
                         "one row per example")
    n = next(iter(lengths.values()), 0)
    if n == 0:
        raise GraphError(f"{where}: the data holds no examples")
    return n


def check_scalar_reports(step: TrainStep) -> None:
    """Refuses a loss or metric output that is not a scalar (one number per step)."""
    types = {v.name: v.type for v in step.graph.outputs}
    for name in [step.manifest["loss"], *step.manifest["metrics"]]:
        shape = types[name].shape
        if shape is None or any(d != 1 for d in shape):
            raise GraphError(f"metric {name!r} is not a scalar ({types[name]}); report one "
                             "number per step (reduce it first, e.g. reduce_mean)")


def batches(n: int, batch_size: int, rng: np.random.Generator,
            shuffle: bool = True) -> Iterator[np.ndarray]:
    """Index arrays covering range(n) once, shuffled by ``rng`` unless ``shuffle`` is false;
    the last batch may be smaller."""
    order = rng.permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]
