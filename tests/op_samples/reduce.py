"""Sample rows: reductions."""
import numpy as np

from . import Sample, randn

ties = np.array([[1.0, 3.0, 3.0], [2.0, -1.0, 0.5]])
SAMPLES = [
    Sample("reduce_sum", [randn(3, 4)], second_order=True, label="all"),
    Sample("reduce_sum", [randn(2, 3, 4)], {"axes": (1,), "keepdims": False}),
    Sample("reduce_sum", [randn(2, 3, 4)], {"axes": (0, 2), "keepdims": True}),
    Sample("reduce_mean", [randn(2, 3, 4)], {"axes": (-1,), "keepdims": False},
           second_order=True),
    Sample("reduce_mean", [randn(3, 4)], label="all"),
    Sample("reduce_max", [randn(2, 3, 4)], {"axes": (1,), "keepdims": False}),
    Sample("reduce_max", [randn(3, 4)], label="all"),
    Sample("reduce_max", [ties], {"axes": (1,)}, grad=False, label="ties"),
]
