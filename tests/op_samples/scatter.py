"""Sample rows: scatter_reduce (ONNX ScatterElements with reduction mul, max or min).
max and min are differentiable (random data has no ties); mul refuses a gradient."""
from __future__ import annotations

import numpy as np

from . import Sample, randn


def idx(rows) -> np.ndarray:
    return np.asarray(rows, np.int64)


SAMPLES = [
    Sample("scatter_reduce", [randn(3, 4), idx([[0, 2], [-1, 0]]), randn(2, 2, seed=1)],
           {"axis": 1, "reduction": "mul"}, grad=False, label="mul", min_opset=16),
    Sample("scatter_reduce", [randn(4, 2), idx([[1, 1], [1, -4], [3, 1]]), randn(3, 2, seed=1)],
           {"axis": 0, "reduction": "mul"}, grad=False, label="mul-repeat",
           min_opset=16),
    Sample("scatter_reduce", [randn(3, 4), idx([[0, 2], [-1, 0]]), randn(2, 2, seed=1)],
           {"axis": 1, "reduction": "max"}, min_opset=18, label="max"),
    Sample("scatter_reduce", [randn(4, 2), idx([[1, 1], [1, -4], [3, 1]]), randn(3, 2, seed=1)],
           {"axis": 0, "reduction": "max"}, min_opset=18, label="max-repeat"),
    Sample("scatter_reduce", [randn(4, 2), idx([[1, 1], [1, -4], [3, 1]]), randn(3, 2, seed=1)],
           {"axis": 0, "reduction": "min"}, min_opset=18, label="min-repeat"),
]
