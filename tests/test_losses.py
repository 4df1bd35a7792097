"""Losses: hand-derived values and gradients, stability at logits of magnitude 1000 in both
engines, the ONNX lowering, symbolic batch sizes and the errors a user can cause."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import graphdl as gd
import passes
from graphdl.core.rewrite import expand_composites

ENGINES = ["numpy", "ort"]


def _graph(fn, a: np.ndarray, t: np.ndarray, **attrs) -> gd.Graph:
    b = gd.GraphBuilder("loss")
    z = b.input("z", ["N", *a.shape[1:]], a.dtype)
    y = b.input("t", ["N", *t.shape[1:]], t.dtype)
    return b.build({"loss": fn(z, y, **attrs)})


def _loss_and_grad(fn, a, t, engine="numpy", **attrs) -> tuple[float, np.ndarray]:
    g = _graph(fn, a, t, **attrs)
    out = gd.run(passes.grad(g, "loss", ["z"]), {"z": a, "t": t}, backend=engine)
    return float(out["loss"]), out["z_grad"]


@pytest.mark.parametrize("engine", ENGINES)
def test_hand_derived_values(engine):
    p, t = np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])
    assert _loss_and_grad(gd.mse_loss, p, t, engine)[0] == pytest.approx(2.5)
    assert _loss_and_grad(gd.mse_loss, p, t, engine, reduction="sum")[0] == pytest.approx(5.0)
    p, t = np.array([[0.8, 0.25]]), np.array([[1.0, 0.0]])
    want = -(np.log(0.8) + np.log(0.75)) / 2
    assert _loss_and_grad(gd.binary_cross_entropy, p, t, engine)[0] == pytest.approx(want)
    z = np.zeros((3, 4))
    loss, gz = _loss_and_grad(gd.softmax_cross_entropy, z, np.array([0, 1, 3]), engine)
    assert loss == pytest.approx(np.log(4))
    np.testing.assert_allclose(gz, (0.25 - np.eye(4)[[0, 1, 3]]) / 3)
    loss, _ = _loss_and_grad(gd.softmax_cross_entropy_onehot, z, np.eye(4)[[0, 1, 3]], engine)
    assert loss == pytest.approx(np.log(4))


@pytest.mark.parametrize("engine", ENGINES)
def test_bce_with_logits_gradient_at_zero_is_exact(engine):
    """At z = 0 (e.g. zero-initialised weights) d/dz = (sigmoid(0) - t) / n = (0.5 - t) / n,
    which a decomposition through max(z, 0) and |z| would get wrong at the kink."""
    z, t = np.zeros((2, 2)), np.array([[1.0, 0.0], [0.25, 0.5]])
    loss, gz = _loss_and_grad(gd.binary_cross_entropy_with_logits, z, t, engine)
    assert loss == pytest.approx(np.log(2))
    np.testing.assert_allclose(gz, (0.5 - t) / 4, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("engine", ENGINES)
def test_logits_of_magnitude_1000_give_finite_exact_losses(engine, dtype):
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]], dtype)
    labels = np.array([1, 2])
    loss, gz = _loss_and_grad(gd.softmax_cross_entropy, z, labels, engine)
    assert loss == pytest.approx((2000.0 + 1.0 + np.log1p(np.exp(-1.0))) / 2, rel=1e-6)
    sm = np.exp(z - z.max(1, keepdims=True))
    sm /= sm.sum(1, keepdims=True)
    np.testing.assert_allclose(gz, (sm - np.eye(3)[labels]) / 2, atol=1e-7)
    loss1, gz1 = _loss_and_grad(gd.softmax_cross_entropy_onehot, z, np.eye(3, dtype=dtype)[labels],
                                engine)
    assert loss1 == pytest.approx(loss, rel=1e-6)
    np.testing.assert_allclose(gz1, gz, atol=1e-7)
    t = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5]], dtype)
    loss, gz = _loss_and_grad(gd.binary_cross_entropy_with_logits, z, t, engine)
    want = (1000 + 1000 + np.log(2) + 1000 + 1000 + 999 * 0.5) / 6
    assert loss == pytest.approx(want, rel=1e-6)
    np.testing.assert_allclose(gz, ((z > 0) + 0.5 * (z == 0) - t) / 6, atol=1e-7)


def test_softmax_cross_entropy_lowers_to_the_onnx_op():
    g = _graph(gd.softmax_cross_entropy, np.zeros((2, 3), np.float32), np.zeros(2, np.int64))
    model = gd.to_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    (node,) = model.graph.node
    assert node.op_type == "SoftmaxCrossEntropyLoss"
    assert onnx.helper.get_attribute_value(node.attribute[0]) == b"mean"


@pytest.mark.parametrize("op, t", [
    (gd.mse_loss, np.full((5, 3), 0.3)), (gd.binary_cross_entropy, np.full((5, 3), 0.3)),
    (gd.binary_cross_entropy_with_logits, np.full((5, 3), 0.3)),
    (gd.softmax_cross_entropy, np.array([0, 2, 1, 1, 0])),
    (gd.softmax_cross_entropy_onehot, np.eye(3)[[0, 2, 1, 1, 0]]),
])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_kernel_equals_decomposition(op, t, reduction):
    """The closed-form kernels and the decompositions used for export agree."""
    z = np.random.default_rng(0).uniform(0.1, 0.9, (5, 3))
    g = _graph(op, z, t, reduction=reduction)
    expanded, _ = expand_composites(g, lambda o: "composite" in o.traits)
    assert all("loss" not in n.op and "entropy" not in n.op for n in expanded.nodes)
    feeds = {"z": z, "t": t}
    np.testing.assert_allclose(gd.run(g, feeds)["loss"], gd.run(expanded, feeds)["loss"],
                               rtol=1e-12)


def test_the_batch_dim_stays_symbolic():
    g = _graph(gd.softmax_cross_entropy, np.zeros((2, 3), np.float32), np.zeros(2, np.int64))
    gg = passes.grad(g, "loss", ["z"])
    assert gg.value("loss").type.shape == ()
    for n in (1, 6):
        z = np.random.default_rng(n).standard_normal((n, 3)).astype(np.float32)
        labels = np.arange(n) % 3
        out = gd.run(gg, {"z": z, "t": labels}, backend="ort")
        ours = gd.run(gg, {"z": z, "t": labels})
        np.testing.assert_allclose(out["z_grad"], ours["z_grad"], rtol=1e-5, atol=1e-7)
        assert out["z_grad"].sum() == pytest.approx(0.0, abs=1e-6)


def test_one_hot():
    b = gd.GraphBuilder()
    y = b.input("y", ["N"], "int64")
    g = b.build({"o": gd.one_hot(y, 4, "float64")})
    np.testing.assert_array_equal(gd.run(g, {"y": np.array([3, 0, 9])})["o"],
                                  [[0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]])


def _apply(op, z_shape, t_shape, t_dtype="float32", **attrs):
    b = gd.GraphBuilder()
    return op(b.input("z", z_shape), b.input("t", t_shape, t_dtype), **attrs)


def test_errors_name_the_problem_and_the_users_line():
    at_line = r"test_losses.py:\d+: "
    with pytest.raises(gd.ShapeError, match=at_line + r"prediction \[N,1\] and target \[N\]"):
        _apply(gd.mse_loss, ["N", 1], ["N"])
    with pytest.raises(gd.DTypeError, match="labels must be int64 or int32"):
        _apply(gd.softmax_cross_entropy, ["N", 3], ["N"], "float32")
    with pytest.raises(gd.ShapeError, match=r"logits must be \[N, C\]"):
        _apply(gd.softmax_cross_entropy_onehot, ["N", 2, 3], ["N", 2, 3])
    with pytest.raises(gd.ShapeError, match="different batch sizes"):
        _apply(gd.softmax_cross_entropy, [4, 3], [5], "int64")
    with pytest.raises(gd.GraphError, match="reduction must be 'mean' or 'sum'"):
        _apply(gd.binary_cross_entropy, ["N"], ["N"], reduction="none")
    with pytest.raises(gd.DTypeError, match="insert a cast"):
        _apply(gd.mse_loss, ["N"], ["N"], "float64")


def test_out_of_range_labels_are_reported():
    g = _graph(gd.softmax_cross_entropy, np.zeros((2, 3)), np.zeros(2, np.int64))
    with pytest.raises(gd.GraphError, match=r"labels must lie in \[0, 3\)"):
        gd.run(g, {"z": np.zeros((2, 3)), "t": np.array([0, 3])})


def test_expanding_a_composite_keeps_the_names_of_later_nodes():
    """The decomposition's temporaries must not take names that later nodes hold (a bug in
    rewrite.rebuild: 'mul_2' used twice)."""
    b = gd.GraphBuilder()
    p, t = b.input("p", [3], "float64"), b.input("t", [3], "float64")
    g = b.build({"loss": gd.mse_loss(p, t) * 2.0 + gd.reduce_sum(p * p)})
    feeds = {"p": np.array([1.0, 2.0, 3.0]), "t": np.zeros(3)}
    out = gd.run(passes.grad(g, "loss", ["p"]), feeds)
    assert float(out["loss"]) == pytest.approx(2 * 14 / 3 + 14)
    np.testing.assert_allclose(out["p_grad"], 4 * feeds["p"] / 3 + 2 * feeds["p"])
