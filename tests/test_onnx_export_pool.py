"""MaxPool's lowering leaves its Indices output off when nothing reads it (onnxruntime's MaxPool
without Indices is several times faster): also in gradient graphs whose windows tile the input,
where max_pool_grad is exported without the indices; it keeps them when something reads them."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import graphdl as gd
import passes



def _torch():
    return pytest.importorskip("torch")


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
    torch = _torch()
    want = torch.nn.functional.max_pool2d(torch.from_numpy(_x()), 2).numpy() * 2
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_read_indices_are_kept_and_match_torch():
    g = _pool_graph(with_indices=True)
    assert _maxpool_outputs(gd.to_onnx(g)) == [2]
    got = gd.run(g, {"x": _x()}, backend="ort")["idx"]
    torch = _torch()
    want = torch.nn.functional.max_pool2d(torch.from_numpy(_x()), 2, return_indices=True)[1]
    np.testing.assert_array_equal(got, want.numpy() + 36 * np.arange(6).reshape(3, 2, 1, 1))


def _pool_grad(shape: list, dtype: str = "float32", **pool) -> gd.Graph:
    """d sum(max_pool(x) * w) / dx: w makes each window's gradient distinct."""
    b = gd.GraphBuilder("pool_loss")
    x = b.input("x", shape, dtype)
    y = gd.max_pool(x, **pool)
    w = b.input("w", y.shape, dtype)
    g = b.build({"loss": gd.reduce_sum(y * w)})
    return passes.grad(g, "loss", ["x"])


def _tied(shape: tuple, dtype=np.float32, seed: int = 0) -> np.ndarray:
    """ReLU'd small integers: most windows hold ties (zeros, and repeated values)."""
    rng = np.random.default_rng(seed)
    return np.maximum(rng.integers(-3, 3, shape), 0).astype(dtype)


def _engines_agree(grad: gd.Graph, x: np.ndarray, out_shape: tuple) -> np.ndarray:
    w = np.random.default_rng(1).standard_normal(out_shape).astype(x.dtype)
    feeds = {"x": x, "w": w}
    ort, ref = gd.run(grad, feeds, backend="ort"), gd.run(grad, feeds)
    np.testing.assert_allclose(ort["x_grad"], ref["x_grad"], rtol=1e-6, atol=0)
    return ref["x_grad"]


@pytest.mark.parametrize("shape,kernel,dtype", [
    ((3, 2, 6, 6), (2, 2), "float32"),
    ((2, 3, 7, 8), (3, 3), "float64"),     # 7 = 2*3 + 1 and 8 = 2*3 + 2: uncovered edges
    ((2, 2, 9), (2,), "float32"),
    ((1, 2, 4, 4, 6), (2, 2, 3), "float64"),
    ((2, 1, 4, 6), (1, 3), "float32"),
])
def test_tiling_pool_gradient_exports_without_indices(shape, kernel, dtype):
    """Ties everywhere: the exported mask must pick each window's first maximum, as the
    interpreter's indices do; the model has no ScatterElements and MaxPool no Indices."""
    grad = _pool_grad(["N", *shape[1:]], dtype, kernel=kernel)
    model = gd.to_onnx(grad)
    onnx.checker.check_model(model, full_check=True)
    assert _maxpool_outputs(model) == [1]
    assert "ScatterElements" not in {n.op_type for n in model.graph.node}
    outs = tuple(n // k for n, k in zip(shape[2:], kernel))
    gx = _engines_agree(grad, _tied(shape, np.dtype(dtype)), shape[:2] + outs)
    windows = shape[0] * shape[1] * int(np.prod(outs))
    assert np.count_nonzero(gx) == windows  # one routed value per window, ties included


def test_tiling_gradient_matches_torch_on_ties():
    torch = _torch()
    x = _tied((2, 3, 6, 6), seed=3)
    grad = _pool_grad(["N", 3, 6, 6], kernel=2)
    w = np.random.default_rng(2).standard_normal((2, 3, 3, 3)).astype(np.float32)
    got = gd.run(grad, {"x": x, "w": w}, backend="ort")["x_grad"]
    xt = torch.from_numpy(x).requires_grad_()
    (torch.nn.functional.max_pool2d(xt, 2) * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(got, xt.grad.numpy(), rtol=1e-6)


def test_overlapping_pool_gradient_keeps_indices():
    grad = _pool_grad(["N", 2, 7, 7], kernel=3, strides=2)
    model = gd.to_onnx(grad)
    assert _maxpool_outputs(model) == [2]
    assert "ScatterElements" in {n.op_type for n in model.graph.node}
    _engines_agree(grad, _tied((2, 2, 7, 7)), (2, 2, 3, 3))
