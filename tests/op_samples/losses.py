"""Sample rows for the losses (graphdl/ops/losses.py): both reductions, and large logits."""
from __future__ import annotations

import numpy as np

from . import Sample, randn, rng


def _probs(*shape: int, seed: int = 0) -> np.ndarray:
    """Probabilities in [0.05, 0.95], away from log's poles so finite differences hold."""
    return 0.05 + 0.9 * rng(seed).random(shape)


def _labels(n: int, c: int, seed: int = 0) -> np.ndarray:
    return rng(seed).integers(0, c, size=n).astype(np.int64)


def _simplex(n: int, c: int, seed: int = 0) -> np.ndarray:
    """Rows of class probabilities summing to 1 (soft labels)."""
    x = rng(seed).random((n, c)) + 0.1
    return x / x.sum(axis=1, keepdims=True)


SAMPLES = [
    Sample("mse_loss", [randn(4, 3), randn(4, 3, seed=1)], second_order=True),
    Sample("mse_loss", [randn(5), randn(5, seed=1)], {"reduction": "sum"}, second_order=True),
    Sample("binary_cross_entropy", [_probs(4, 3), _probs(4, 3, seed=1)], second_order=True),
    Sample("binary_cross_entropy", [_probs(6), (_probs(6, seed=1) > 0.5).astype(np.float64)],
           {"reduction": "sum"}, second_order=True, label="hard-targets-sum"),
    Sample("binary_cross_entropy_with_logits", [randn(4, 3), _probs(4, 3, seed=1)],
           second_order=True),
    Sample("binary_cross_entropy_with_logits", [3 * randn(6), _probs(6, seed=1)],
           {"reduction": "sum"}, second_order=True),
    Sample("binary_cross_entropy_with_logits", [1000 * np.array([1.0, -1.0, 0.5, -0.25]),
                                                np.array([0.0, 1.0, 1.0, 0.0])],
           grad=False, label="logits-1000"),
    Sample("softmax_cross_entropy", [randn(5, 4), _labels(5, 4)], second_order=True),
    Sample("softmax_cross_entropy", [randn(3, 6), _labels(3, 6, seed=2)], {"reduction": "sum"},
           second_order=True),
    Sample("softmax_cross_entropy", [1000 * randn(4, 3, seed=3), _labels(4, 3)], grad=False,
           label="logits-1000"),
    Sample("softmax_cross_entropy_onehot", [randn(5, 4), _simplex(5, 4)], second_order=True),
    Sample("softmax_cross_entropy_onehot", [randn(3, 4), np.eye(4)[[0, 3, 1]]],
           {"reduction": "sum"}, second_order=True, label="onehot-sum"),
    Sample("softmax_cross_entropy_onehot", [1000 * randn(4, 3, seed=3), np.eye(3)[[2, 0, 1, 1]]],
           grad=False, label="logits-1000"),
]
