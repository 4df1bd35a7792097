"""Sample rows: elementwise arithmetic, comparisons, casts, constants."""
import numpy as np

from . import Sample, away_from_zero, randn, rng

pos = np.abs(randn(3, 4, seed=5)) + 0.5
SAMPLES = [
    Sample("constant", [], {"value": randn(2, 3)}, grad=False),
    Sample("identity", [randn(2, 3)], second_order=True),
    Sample("add", [randn(2, 3), randn(3, seed=1)], second_order=True, label="bcast"),
    Sample("add", [randn(4, 1, 3), randn(2, 1, seed=1)], label="bcast2"),
    Sample("sub", [randn(2, 3), randn(2, 1, seed=1)], second_order=True),
    Sample("mul", [randn(2, 3), randn(1, 3, seed=1)], second_order=True),
    Sample("mul", [randn(5), randn(2, 5, seed=1)], label="lead"),
    Sample("div", [randn(2, 3), pos[:2, :3]], second_order=True),
    Sample("div", [np.array([7, -7, 6], np.int64), np.array([2, 2, -4], np.int64)], grad=False,
           const=(), label="int"),
    Sample("pow", [pos, randn(3, 4, seed=2)], second_order=True),
    Sample("pow", [pos, np.array(2.0)], label="square"),
    Sample("maximum", [randn(3, 4), randn(3, 4, seed=1)]),
    Sample("minimum", [randn(3, 4), randn(4, seed=1)]),
    Sample("neg", [randn(2, 3)], second_order=True),
    Sample("exp", [randn(2, 3)], second_order=True),
    Sample("log", [pos], second_order=True),
    Sample("sqrt", [pos], second_order=True),
    Sample("abs", [away_from_zero(3, 4)]),
    Sample("reciprocal", [pos], second_order=True),
    Sample("sign", [away_from_zero(3, 4)], grad=False),
    Sample("equal", [np.array([1.0, 2, 3]), np.array([1.0, 0, 3])], grad=False),
    Sample("less", [randn(3, 4), randn(4, seed=1)], grad=False),
    Sample("greater", [randn(3, 4), randn(3, 1, seed=1)], grad=False),
    Sample("less_or_equal", [randn(3, 4), randn(3, 4, seed=1)], grad=False),
    Sample("greater_or_equal", [randn(3, 4), randn(3, 4, seed=1)], grad=False),
    Sample("where", [rng(3).random((3, 4)) > 0.5, randn(3, 4), randn(4, seed=1)],
           second_order=True),
    Sample("cast", [randn(3, 4)], {"to": "float64"}, second_order=True),
    Sample("cast", [randn(3, 4)], {"to": "float32"}, grad=False, label="to-f32"),
    Sample("cast", [randn(3, 4) * 10], {"to": "int64"}, grad=False, label="to-int"),
]
