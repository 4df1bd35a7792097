"""The backprop pass: fan-out, unused inputs, multi-output nodes, symbolic batches, long chains,
second order, tagging and path pruning, checked against hand-derived gradients."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl.core import registry
from graphdl.core.registry import OpDef


def test_fan_out_sums_every_use():
    b = gd.GraphBuilder()
    x = b.input("x", [3], "float64")
    loss = gd.reduce_sum(x * x + x * 3.0 + gd.exp(x))
    g = passes.grad(b.build({"loss": loss}), "loss", ["x"])
    xv = np.array([0.5, -1.0, 2.0])
    got = gd.run(g, {"x": xv})["x_grad"]
    np.testing.assert_allclose(got, 2 * xv + 3 + np.exp(xv), rtol=1e-12)


def test_unused_input_gets_zero_gradient_of_its_symbolic_shape():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 2], "float64")
    b.input("z", ["N", 3], "float64")
    g = passes.grad(b.build({"loss": gd.reduce_sum(x)}), "loss", ["x", "z"])
    assert [str(v.type) for v in g.outputs] == ["f64[]", "f64[N,2]", "f64[N,3]"]
    for backend in ("numpy", "ort"):
        out = gd.run(g, {"x": np.ones((7, 2)), "z": np.ones((7, 3))}, backend=backend)
        np.testing.assert_array_equal(out["z_grad"], np.zeros((7, 3)))
        np.testing.assert_array_equal(out["x_grad"], np.ones((7, 2)))


def test_multi_output_node_with_an_unused_output():
    b = gd.GraphBuilder()
    x = b.input("x", [5], "float64")
    first, _ = gd.split(x, [2, 3])
    g = passes.grad(b.build({"loss": gd.reduce_sum(first * first)}), "loss", ["x"])
    xv = np.arange(5.0)
    np.testing.assert_allclose(gd.run(g, {"x": xv})["x_grad"], [0, 2, 0, 0, 0])


def _linear_regression():
    rng = np.random.default_rng(0)
    b = gd.GraphBuilder("linreg")
    x = b.input("x", ["N", 4], "float64")
    y = b.input("y", ["N", 2], "float64")
    w = b.param("w", rng.standard_normal((4, 2)))
    loss = gd.reduce_mean((x @ w - y) ** 2.0)
    return b.build({"loss": loss}), w


@pytest.mark.parametrize("n", [1, 7, 128])
def test_symbolic_batch_through_one_exported_file(n, tmp_path):
    """The same exported gradient model runs at every batch size and matches the closed form
    dL/dW = 2/(N*k) X^T (XW - Y)."""
    g, _ = _linear_regression()
    gg = passes.grad(g, "loss", ["w"])
    path = tmp_path / "grad.onnx"
    path.write_bytes(gd.to_onnx(gg).SerializeToString())
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(n)
    xv, yv = rng.standard_normal((n, 4)), rng.standard_normal((n, 2))
    wv = g.params["w"]
    expected = 2.0 / (n * 2) * xv.T @ (xv @ wv - yv)
    (ort_grad,) = sess.run(["w_grad"], {"x": xv, "y": yv})
    np.testing.assert_allclose(ort_grad, expected, rtol=1e-10)
    np.testing.assert_allclose(gd.run(gg, {"x": xv, "y": yv})["w_grad"], expected, rtol=1e-10)


def test_ten_thousand_node_chain_has_no_recursion_limit():
    b = gd.GraphBuilder()
    x = b.input("x", [], "float64")
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    g = passes.grad(b.build({"loss": y}), "loss", ["x"])
    out = gd.run(g, {"x": np.array(2.0)})
    np.testing.assert_allclose(out["x_grad"], 1.0001 ** 10_000, rtol=1e-9)


def test_second_order_by_differentiating_the_gradient_graph():
    b = gd.GraphBuilder()
    x = b.input("x", [3], "float64")
    g1 = passes.grad(b.build({"loss": gd.reduce_sum(x ** 3.0)}), "loss", ["x"])
    b2 = gd.GraphBuilder.from_graph(g1)
    s = gd.reduce_sum(b2.tensor(g1.value("x_grad")))  # sum(3 x^2)
    g2 = passes.grad(b2.build({"s": s}), "s", ["x"])
    xv = np.array([1.0, -2.0, 0.5])
    out = gd.run(g2, {"x": xv})
    np.testing.assert_allclose(out[g2.outputs[-1].name], 6 * xv, rtol=1e-12)


def test_gradient_nodes_are_tagged_with_their_forward_node_and_pruned():
    b = gd.GraphBuilder()
    a = b.input("a", [2], "float64")
    c = b.input("c", [2], "float64")
    left = gd.tanh(a)
    right = gd.exp(c)
    g = b.build({"loss": gd.reduce_sum(left) + gd.reduce_sum(right)})
    gg = passes.grad(g, "loss", ["a"])
    forward = {n.name: n for n in g.nodes}
    new = [n for n in gg.nodes if n.name not in forward]
    assert new and all(n.grad_of in forward for n in new if n.op != "identity")
    assert {forward[n.grad_of].op for n in new if n.grad_of} <= {"tanh", "add", "reduce_sum"}


def test_non_scalar_loss_and_integer_wrt_are_refused():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 2])
    k = b.input("k", [2], "int64")
    g = b.build({"y": x * 2.0, "k2": k + k})
    with pytest.raises(gd.GradError, match="scalar"):
        passes.grad(g, "y", ["x"])
    with pytest.raises(gd.GraphError, match="no value named 'nope'"):
        passes.grad(g, "y", ["nope"])
    b2 = gd.GraphBuilder()
    k2 = b2.input("k", [2], "int64")
    g2 = b2.build({"loss": gd.reduce_sum(gd.cast(k2, "float32"))})
    with pytest.raises(gd.GradError, match="int64"):
        passes.grad(g2, "loss", ["k"])


def test_a_vjp_returning_the_wrong_number_of_terms_names_the_node(monkeypatch):
    bad = OpDef("bad_square", registry.get_op("neg").infer, (1, 1), kernel=np.square,
                lower=registry.onnx_op("Neg"), vjp=lambda b, c, g: [g[0], g[0]])
    monkeypatch.setitem(registry._OPS, "bad_square", bad)
    b = gd.GraphBuilder()
    x = b.input("x", [2])
    y = b.apply1("bad_square", [x])
    g = b.build({"loss": gd.reduce_sum(y)})
    with pytest.raises(gd.GradError, match=r"bad_square.*2 terms for 1 inputs"):
        passes.grad(g, "loss", ["x"])
