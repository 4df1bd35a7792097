"""Sample rows: shape ops (shape.py), slice and range (slice.py), pad (pad.py), gather_elements
and scatter_add (scatter.py). Int64 inputs (shape vectors, indices) become constants."""
import numpy as np

from . import Sample, randn

BIG = 2**63 - 1


def i64(*v: int) -> np.ndarray:
    return np.array(v, np.int64)


def idx(rows: list) -> np.ndarray:
    return np.array(rows, np.int64)


SHAPE = [
    Sample("shape", [randn(2, 3, 4)], grad=False),
    Sample("shape", [randn(2, 3, 4)], {"start": 1}, grad=False, label="start"),
    Sample("shape", [randn(2, 3, 4)], {"start": -2, "end": -1}, grad=False, label="neg"),
    Sample("constant_of_shape", [i64(2, 3)], {"value": np.array(1.5)}, grad=False),
    Sample("constant_of_shape", [i64(4)], {"value": np.array(7, np.int64)}, grad=False,
           label="int"),
    Sample("reshape", [randn(2, 3, 4), i64(4, -1)], second_order=True),
    Sample("reshape", [randn(2, 3, 4), i64(0, 12)], label="zero-copies"),
    Sample("reshape", [randn(2, 3, 4), i64(-1)], label="flat"),
    Sample("reshape", [randn(6), i64(0)], {"allowzero": 0}, label="0-of-1d"),
    Sample("flatten", [randn(2, 3, 4)], second_order=True),
    Sample("flatten", [randn(2, 3, 4)], {"axis": 0}, label="axis0"),
    Sample("flatten", [randn(2, 3, 4)], {"axis": 3}, label="axis3"),
    Sample("flatten", [randn(2, 3, 4)], {"axis": -1}, label="axis-1"),
    Sample("transpose", [randn(2, 3, 4)], second_order=True),
    Sample("transpose", [randn(2, 3, 4)], {"perm": (1, 2, 0)}, label="perm"),
    Sample("squeeze", [randn(2, 1, 3, 1)], second_order=True),
    Sample("squeeze", [randn(2, 1, 3, 1)], {"axes": (-1,)}, label="neg-axis"),
    Sample("unsqueeze", [randn(2, 3)], {"axes": (0, -1)}, second_order=True),
    Sample("unsqueeze", [randn(2, 3)], {"axes": (1,)}, label="middle"),
    Sample("expand", [randn(3, 1), i64(2, 3, 4)], second_order=True),
    Sample("expand", [randn(2, 3), i64(3)], label="bidirectional"),
    Sample("concat", [randn(2, 3), randn(4, 3, seed=1)], {"axis": 0}, second_order=True),
    Sample("concat", [randn(2, 1), randn(2, 3, seed=1), randn(2, 2, seed=2)], {"axis": -1},
           label="three"),
    Sample("gather", [randn(5, 3), i64(4, 0, 4, -1)], second_order=True, label="repeat-neg"),
    Sample("gather", [randn(2, 5, 3), idx([[1, 2], [2, -5]])], {"axis": 1}, label="2d-idx"),
    Sample("gather", [randn(2, 5, 3), np.array(-1, np.int64)], {"axis": -1}, label="scalar"),
    Sample("gather", [randn(3, 4), np.array([2, 2, 0], np.int32)], {"axis": 0}, label="int32"),
]

SLICE = [
    Sample("slice", [randn(5, 6), i64(1, 0), i64(4, 6)], second_order=True, label="basic"),
    Sample("slice", [randn(5, 6), i64(-2), i64(BIG), i64(1)], label="neg-start-to-end"),
    Sample("slice", [randn(5, 6), i64(-1), i64(-BIG - 1), i64(0), i64(-1)],
           second_order=True, label="reverse"),
    Sample("slice", [randn(4, 7), i64(5, -100), i64(0, 100), i64(1, 0), i64(-2, 1)],
           label="neg-step-and-clamp"),
    Sample("slice", [randn(4, 7), i64(1), i64(7), None, i64(3)], label="step3-no-axes"),
    Sample("slice", [randn(3, 4, 5), i64(10), i64(20), i64(2)], label="empty"),
    Sample("slice", [randn(3, 4, 5), i64(-1, 4), i64(-3, -5), i64(-1, -3), i64(-1, -1)],
           label="neg-axes"),
    Sample("range", [np.array(1, np.int64), np.array(10, np.int64), np.array(3, np.int64)],
           grad=False),
    Sample("range", [np.array(5, np.int64), np.array(-1, np.int64), np.array(-2, np.int64)],
           grad=False, label="down"),
    Sample("pad", [randn(2, 3), i64(1, 0, 2, 3)], second_order=True),
    Sample("pad", [randn(2, 3), i64(0, 2, 1, 0)], {"value": -1.5}, label="value"),
    Sample("pad", [randn(4, 5), i64(-1, 2, 1, -3)], label="crop"),
]

SCATTER = [
    Sample("gather_elements", [randn(3, 4), idx([[0, 2], [-1, 0]])], {"axis": 1},
           second_order=True),
    Sample("gather_elements", [randn(3, 4), idx([[2, 0, 2, 1], [0, 0, -1, 2]])], {"axis": 0},
           label="axis0-repeat"),
    Sample("scatter_add", [randn(3, 4), idx([[0, 2], [-1, 0]]), randn(2, 2, seed=1)],
           {"axis": 1}, second_order=True),
    Sample("scatter_add", [randn(4, 2), idx([[1, 1], [1, -4], [3, 1]]), randn(3, 2, seed=1)],
           {"axis": 0}, label="repeat"),
]

SAMPLES = SHAPE + SLICE + SCATTER
