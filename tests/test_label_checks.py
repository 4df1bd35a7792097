"""A class label out of range gets the same message in both engines: the interpreter checks in
the loss kernel, the ort engine checks the fed labels before onnxruntime runs (whose own
failure is a GatherElements dump)."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd


def _graph() -> gd.Graph:
    b = gd.GraphBuilder("m")
    z, y = b.input("z", ["N", 3]), b.input("y", ["N"], "int64")
    w = b.param("w", np.eye(3, dtype=np.float32))
    return b.build({"loss": gd.softmax_cross_entropy(z @ w, y)})


@pytest.mark.parametrize("labels,shown", [([0, 5], "0..5"), ([-1, 2], "-1..2"), ([3, 3], "3..3")])
def test_out_of_range_label_is_named_alike_in_both_engines(labels, shown):
    feeds = {"z": np.zeros((2, 3), np.float32), "y": np.array(labels)}
    messages = []
    for engine in ("numpy", "ort"):
        with pytest.raises(gd.GraphError) as e:
            gd.run(_graph(), feeds, backend=engine)
        messages.append(str(e.value))
    assert messages[0] == messages[1] == f"labels must lie in [0, 3), got values {shown}"


def test_labels_in_range_run_in_ort():
    """The check lets every valid label through: the loss matches log(3) for zero logits."""
    feeds = {"z": np.zeros((3, 3), np.float32), "y": np.array([0, 1, 2])}
    got = gd.run(_graph(), feeds, backend="ort")["loss"]
    assert float(got) == pytest.approx(np.log(3.0), rel=1e-6)
