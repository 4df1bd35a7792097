"""Sample rows: trilu, cumsum, argmax, one_hot_values."""
import numpy as np

from . import Sample, randn  # noqa: F401

_IDX = np.array([[0, 3, -1], [2, 5, 1]], np.int64)  # 5 is out of range: a row of "off"

SAMPLES = [
    Sample("trilu", [randn(3, 4)], min_opset=14),  # ONNX Trilu is new in 14
    Sample("trilu", [randn(2, 3, 4)], {"k": -1, "upper": False}, label="lower-k-1", min_opset=14),
    Sample("trilu", [randn(4, 3)], {"k": 2}, label="upper-k2", min_opset=14),
    Sample("cumsum", [randn(3, 4)], {"axis": 1}),
    Sample("cumsum", [randn(3, 4)], {"axis": 0, "exclusive": True}, label="exclusive"),
    Sample("cumsum", [randn(2, 3, 4)], {"axis": -1, "reverse": True}, label="reverse"),
    Sample("cumsum", [randn(2, 5)], {"axis": 1, "exclusive": True, "reverse": True},
           label="exclusive-reverse"),
    Sample("cumsum", [np.arange(12, dtype=np.int64).reshape(3, 4)], {"axis": 1}, const=(),
           grad=False, label="int64"),
    Sample("argmax", [randn(3, 4)], {"axis": 1}, grad=False),
    Sample("argmax", [randn(3, 4)], {"axis": 0, "keepdims": False}, grad=False,
           label="axis0-drop"),
    Sample("argmax", [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])],
           {"axis": 1, "select_last_index": True}, grad=False, label="last"),
    Sample("one_hot_values", [_IDX, np.array([-0.5, 2.0])], {"depth": 4}),
    Sample("one_hot_values", [_IDX, np.array([-0.5, 2.0])], {"depth": 4}, ort="f32", label="f32"),
    Sample("one_hot_values", [_IDX, np.array([1.0, 3.0])], {"depth": 4, "axis": 0}, ort="f32",
           label="axis0"),
]

SAMPLES += [
    Sample("einsum", [randn(2, 3), randn(3, 4, seed=1)], {"equation": "ij,jk->ik"},
           second_order=True),
    Sample("einsum", [randn(2, 2, 3, 4), randn(2, 2, 5, 4, seed=1)],
           {"equation": "bhqd,bhkd->bhqk"}, label="attention-scores"),
    Sample("einsum", [randn(2, 3, 4)], {"equation": "...ij->...j"}, label="ellipsis-sum"),
    Sample("einsum", [randn(3, 4), randn(4, seed=1)], {"equation": "ij,j"}, label="implicit"),
    Sample("einsum", [randn(3, 4)], {"equation": "ij->ji"}, label="transpose"),
    Sample("einsum", [randn(3), randn(4, seed=1)], {"equation": "i,j->ij"}, label="outer"),
    Sample("einsum", [randn(3, 3)], {"equation": "ii->i"}, grad=False, label="diagonal"),
]

SAMPLES += [
    Sample("mod", [np.array([[7, -7, 5], [-3, 4, 0]], np.int64), np.array([3, 3, -2], np.int64)],
           const=(), grad=False, label="int"),
    Sample("mod", [randn(3, 4) * 5, np.abs(randn(4, seed=1)) + 0.5], label="floor"),
    Sample("mod", [randn(3, 4) * 5, np.abs(randn(4, seed=1)) + 0.5], {"fmod": True},
           label="fmod"),
]
