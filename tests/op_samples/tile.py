"""Sample rows: tile (tile.py). The repeats vector becomes a constant."""
import numpy as np

from . import Sample, randn


def i64(*v: int) -> np.ndarray:
    return np.array(v, np.int64)


SAMPLES = [
    Sample("tile", [randn(2, 3), i64(2, 3)], second_order=True),
    Sample("tile", [randn(2, 1, 3), i64(1, 4, 1)], label="middle"),
    Sample("tile", [randn(3), i64(1)], label="once"),
    Sample("tile", [randn(2, 3), i64(0, 2)], label="zero-repeats"),
    Sample("tile", [np.arange(6, dtype=np.int64).reshape(2, 3), i64(2, 1)], const=(1,),
           grad=False, label="int64"),
]
