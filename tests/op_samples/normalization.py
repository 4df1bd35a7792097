"""Sample rows: batch normalisation (inference and training), dropout and its random mask."""
import numpy as np

from . import Sample, randn, rng


def _stats(c: int, seed: int) -> list[np.ndarray]:
    """gamma, beta, mean, var (var kept well above zero)."""
    return [randn(c, seed=seed), randn(c, seed=seed + 1), randn(c, seed=seed + 2),
            np.abs(randn(c, seed=seed + 3)) + 0.5]


def _mask(*shape: int) -> np.ndarray:
    return (rng(7).random(shape) >= 0.3).astype(np.float64)


SAMPLES = [
    Sample("batch_norm", [randn(4, 3), *_stats(3, 1)], label="NC"),
    Sample("batch_norm", [randn(2, 3, 4, 5), *_stats(3, 2)], {"eps": 1e-3}, label="NCHW"),
    Sample("batch_norm_train", [randn(5, 3), *_stats(3, 3)], label="NC"),
    Sample("batch_norm_train", [randn(2, 3, 2, 3), *_stats(3, 4)], {"momentum": 0.3},
           label="NCHW"),
    # all four outputs get a random cotangent: checks the closed-form VJP and the statistics'
    # own gradient paths against finite differences
    Sample("batch_norm_core", [randn(5, 3), randn(3, seed=1), randn(3, seed=2)],
           second_order=True, label="NC"),
    Sample("batch_norm_core", [randn(3, 2, 2, 3), randn(2, seed=1), randn(2, seed=2)],
           {"eps": 1e-3}, second_order=True, label="NCHW"),
    Sample("dropout", [randn(4, 6), _mask(4, 6)], {"rate": 0.3}),
    Sample("dropout", [randn(2, 3, 4), _mask(3, 4)], {"rate": 0.5}, label="broadcast-mask"),
    # random: no gradient, and engines draw different numbers (tests/test_normalization.py
    # checks the statistics of the exported op in onnxruntime)
    Sample("random_uniform_like", [randn(3, 4)], {"seed": 3}, grad=False, ort=False),
]
