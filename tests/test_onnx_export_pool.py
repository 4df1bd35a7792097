"""MaxPool's lowering leaves its Indices output off when nothing reads it (onnxruntime's MaxPool
without Indices is several times faster) and keeps it when the gradient reads it."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import graphdl as gd
import passes

torch = pytest.importorskip("torch")


def _pool_graph(with_indices: bool) -> gd.Graph:
    b = gd.GraphBuilder("pool")
    x = b.input("x", ["N", 2, 6, 6])
    y, idx = gd.max_pool_with_indices(x, 2)
    outs = {"y": y * 2.0}
    if with_indices:
        outs["idx"] = idx
    return b.build(outs)


def _maxpool_outputs(model: onnx.ModelProto) -> list[int]:
    return [len(n.output) for n in model.graph.node if n.op_type == "MaxPool"]


def _x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((3, 2, 6, 6)).astype(np.float32)


def test_unread_indices_are_left_off_and_values_match_torch():
    g = _pool_graph(with_indices=False)
    model = gd.to_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    assert _maxpool_outputs(model) == [1]
    got = gd.run(g, {"x": _x()}, backend="ort")["y"]
    want = torch.nn.functional.max_pool2d(torch.from_numpy(_x()), 2).numpy() * 2
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_read_indices_are_kept_and_match_torch():
    g = _pool_graph(with_indices=True)
    assert _maxpool_outputs(gd.to_onnx(g)) == [2]
    got = gd.run(g, {"x": _x()}, backend="ort")["idx"]
    want = torch.nn.functional.max_pool2d(torch.from_numpy(_x()), 2, return_indices=True)[1]
    np.testing.assert_array_equal(got, want.numpy() + 36 * np.arange(6).reshape(3, 2, 1, 1))


def test_gradient_graph_keeps_indices_and_agrees_with_the_interpreter():
    b = gd.GraphBuilder("pool_loss")
    x = b.input("x", ["N", 2, 6, 6])
    g = b.build({"loss": gd.reduce_sum(gd.max_pool(x, 2) ** 2.0)})
    grad = passes.grad(g, "loss", ["x"])
    assert _maxpool_outputs(gd.to_onnx(grad)) == [2]
    feeds = {"x": _x()}
    ort, ref = gd.run(grad, feeds, backend="ort"), gd.run(grad, feeds)
    np.testing.assert_allclose(ort["x_grad"], ref["x_grad"], rtol=1e-6)
    assert np.count_nonzero(ref["x_grad"]) == 3 * 2 * 9
