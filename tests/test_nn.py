"""graphdl.nn: Dense shapes with a symbolic batch, initialisation, naming, and the SGD helper."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl.nn import MLP, Dense, Sequential
from graphdl.training.minibatch import MinibatchSGD, minibatches, params_as_inputs
from graphdl.core.types import Sym


def _builder(n_in: int = 64, dtype: str = "float32") -> tuple[gd.GraphBuilder, gd.Tensor]:
    b = gd.GraphBuilder("t")
    return b, b.input("x", ["N", n_in], dtype)


def test_dense_shapes_keep_the_symbolic_batch_dim():
    b, x = _builder()
    h = Dense(64, 256, "relu")(x)
    y = Dense(256, 10)(h)
    assert h.shape == (Sym.var("N"), 256) and y.shape == (Sym.var("N"), 10)
    g = b.build({"y": y})
    for n in (1, 5):
        assert gd.run(g, {"x": np.zeros((n, 64), np.float32)})["y"].shape == (n, 10)


def test_dense_computes_act_of_xw_plus_b():
    b, x = _builder(3, "float64")
    layer = Dense(3, 2, "tanh", seed=1)
    g = b.build({"y": layer(x)})
    w, bias = (g.initializers[g.value(n)] for n in ("dense1.W", "dense1.b"))
    xs = np.arange(6.0).reshape(2, 3) / 10
    np.testing.assert_allclose(gd.run(g, {"x": xs})["y"], np.tanh(xs @ w + bias), rtol=1e-12)
    assert w.dtype == np.float64 and bias.shape == (2,)


def test_dense_rejects_wrong_feature_count_at_the_users_line():
    b, x = _builder(32)
    with pytest.raises(gd.ShapeError, match=r"dense1: expects inputs \[\.\.\., 64\].*test_nn"):
        Dense(64, 8)(x)


def test_he_init_variance_is_2_over_fan_in():
    w = Dense(400, 300, "relu", seed=0).init_params(np.random.default_rng(0))["W"]
    assert abs(w.mean()) < 0.003
    assert w.var() == pytest.approx(2 / 400, rel=0.03)


def test_glorot_init_for_sigmoid_and_tanh():
    for act in ("sigmoid", "tanh", None):
        w = Dense(400, 200, act, seed=0).init_params(np.random.default_rng(0))["W"]
        a = np.sqrt(6 / 600)
        assert w.var() == pytest.approx(2 / 600, rel=0.03)
        assert -a <= w.min() and w.max() <= a


def test_explicit_init_overrides_the_default():
    w = Dense(400, 300, "sigmoid", init="he").init_params(np.random.default_rng(0))["W"]
    assert w.var() == pytest.approx(2 / 400, rel=0.03)


def _inits(net) -> dict[str, np.ndarray]:
    b, x = _builder()
    g = b.build({"y": net(x)})
    return {v.name: a for v, a in g.initializers.items()}


def test_parameters_are_deterministic_by_seed():
    a = _inits(MLP([64, 32, 10], seed=3))
    b = _inits(MLP([64, 32, 10], seed=3))
    c = _inits(MLP([64, 32, 10], seed=4))
    assert list(a) == ["dense1.W", "dense1.b", "dense2.W", "dense2.b"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.allclose(a["dense1.W"], c["dense1.W"])
    assert not np.allclose(a["dense1.W"][:32, :10], a["dense2.W"][:32, :10])


def test_unseeded_layers_are_distinct_and_reproducible():
    def net():
        return Sequential(Dense(64, 64, "relu"), Dense(64, 64, "relu"))
    a, b = _inits(net()), _inits(net())
    assert not np.allclose(a["dense1.W"], a["dense2.W"])
    np.testing.assert_array_equal(a["dense2.W"], b["dense2.W"])


def test_parameter_names_are_unique_and_readable():
    b, x = _builder()
    enc = MLP([64, 16, 4], "tanh", name="enc")
    dec = MLP([4, 16, 64], "tanh", name="dec")
    extra = Dense(64, 64)
    y = extra(dec(enc(x)))
    g = b.build({"y": y})
    names = [v.name for v in g.initializers]
    assert len(set(names)) == len(names) == 10
    assert names[:2] == ["enc.dense1.W", "enc.dense1.b"] and "dec.dense2.W" in names
    assert names[-2:] == ["dense1.W", "dense1.b"]
    assert list(enc.parameters(b)) == ["enc.dense1.W", "enc.dense1.b", "enc.dense2.W",
                                       "enc.dense2.b"]
    with pytest.raises(gd.GraphError, match="enc.dense1.W"):
        MLP([64, 16], name="enc")(x)


def test_a_layer_called_twice_shares_its_weights():
    b, x = _builder(8)
    layer = Dense(8, 8, "relu")
    y = layer(layer(x))
    g = b.build({"y": y})
    assert [v.name for v in g.initializers] == ["dense1.W", "dense1.b"]
    w, bias = g.initializers[g.value("dense1.W")], g.initializers[g.value("dense1.b")]
    xs = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    np.testing.assert_allclose(gd.run(g, {"x": xs})["y"], relu(relu(xs @ w + bias) @ w + bias),
                               rtol=1e-5)


def test_a_model_builds_the_same_values_on_two_builders():
    net = MLP([64, 8, 2], seed=1)
    a, b = _inits(net), _inits(net)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_float64_inputs_give_float64_parameters():
    b, x = _builder(4, "float64")
    g = b.build({"y": Dense(4, 2, seed=0)(x)})
    assert {a.dtype for a in g.initializers.values()} == {np.dtype(np.float64)}


def test_sequential_accepts_plain_functions():
    b, x = _builder(4, "float64")
    net = Sequential(Dense(4, 3, seed=0), gd.relu, lambda t: t * 2.0)
    g = b.build({"y": net(x)})
    w = g.initializers[g.value("dense1.W")]
    xs = np.ones((2, 4))
    np.testing.assert_allclose(gd.run(g, {"x": xs})["y"], 2 * np.maximum(xs @ w, 0))


def test_unknown_activation_and_init_are_refused():
    with pytest.raises(ValueError, match="unknown activation"):
        Dense(2, 2, "swish")
    with pytest.raises(ValueError, match="unknown init"):
        Dense(2, 2, init="orthogonal")


# -- training helpers --------------------------------------------------------------------------


def _linear_regression() -> tuple[gd.Graph, np.ndarray, np.ndarray]:
    b, x = _builder(3, "float64")
    g = b.build({"loss": gd.mse_loss(Dense(3, 1, seed=0)(x), b.input("y", ["N", 1], "float64"))})
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((20, 3))
    return g, xs, xs @ np.array([[1.0], [-2.0], [0.5]]) + 0.3


def test_params_as_inputs_moves_initializers_to_inputs():
    g, _, _ = _linear_regression()
    g2, params = params_as_inputs(g)
    assert [v.name for v in g2.inputs] == ["x", "y", "dense1.W", "dense1.b"]
    assert not g2.initializers and set(params) == {"dense1.W", "dense1.b"}
    g3, p3 = params_as_inputs(g, ["dense1.b"])
    assert [v.name for v in g3.initializers] == ["dense1.W"] and list(p3) == ["dense1.b"]
    with pytest.raises(gd.GraphError, match="nope"):
        params_as_inputs(g, ["nope"])


@pytest.mark.parametrize("backend", ["numpy", "ort"])
def test_sgd_step_matches_the_hand_derived_gradient(backend):
    g, xs, ys = _linear_regression()
    g2, params = params_as_inputs(g)
    sgd = MinibatchSGD(passes.grad(g2, "loss", list(params)), params, 0.1, backend=backend)
    w, bias = params["dense1.W"], params["dense1.b"]
    r = xs @ w + bias - ys
    loss = sgd.step({"x": xs, "y": ys})
    assert loss == pytest.approx(np.mean(r ** 2), rel=1e-12)
    np.testing.assert_allclose(sgd.params["dense1.W"], w - 0.1 * 2 * xs.T @ r / 20, rtol=1e-10)
    np.testing.assert_allclose(sgd.params["dense1.b"], bias - 0.1 * 2 * r.mean(0), rtol=1e-10)
    for _ in range(300):
        sgd.step({"x": xs, "y": ys})
    np.testing.assert_allclose(sgd.params["dense1.W"].ravel(), [1.0, -2.0, 0.5], atol=1e-4)


def test_sgd_refuses_a_graph_without_the_gradients():
    g, _, _ = _linear_regression()
    g2, params = params_as_inputs(g)
    with pytest.raises(gd.GraphError, match="dense1.W_grad"):
        MinibatchSGD(g2, params, 0.1)


def test_minibatches_cover_every_index_once():
    batches = list(minibatches(10, 4, np.random.default_rng(0)))
    assert [len(i) for i in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches)) == list(range(10))


def test_fit_classifier_takes_the_numpy_momentum_sgd_steps():
    """MinibatchSGD runs optim.SGD in a TrainStep through Trainer.fit; a hand loop that runs
    the gradient graph and updates in NumPy (v <- m v + g, W <- W - lr v) on the same shuffled
    batches gives the same per-step losses, epoch means and final weights."""
    from sklearn.datasets import load_digits

    from graphdl.training.minibatch import accuracy, classifier_graphs, fit_classifier

    x, y = load_digits(return_X_y=True)
    x, y = (x[:150] / 16).astype(np.float32), y[:150].astype(np.int64)
    data = (x[:100], x[100:], y[:100], y[100:])
    train_g, infer_g = classifier_graphs(MLP((64, 16, 10), "relu", seed=0), ["N", 64], "c")
    train_g, params = params_as_inputs(train_g)
    infer_g, _ = params_as_inputs(infer_g)
    gg = passes.grad(train_g, "loss", list(params))
    sgd = MinibatchSGD(gg, params, 0.1, momentum=0.9)
    got = fit_classifier(sgd, infer_g, data, epochs=2, batch_size=32, seed=3, verbose=False)

    w, v = dict(params), {k: np.zeros_like(a) for k, a in params.items()}
    rng, losses = np.random.default_rng(3), []
    for _ in range(2):
        order = rng.permutation(100)
        for s in range(0, 100, 32):
            i = order[s:s + 32]
            out = gd.run(gg, {"x": x[i], "y": y[i], **w})
            losses.append(float(out["loss"]))
            for k in w:
                v[k] = np.float32(0.9) * v[k] + out[f"{k}_grad"]
                w[k] = w[k] - np.float32(0.1) * v[k]
    np.testing.assert_allclose(got["losses"], losses, rtol=1e-6)
    assert [h["loss"] for h in got["history"]] == pytest.approx(
        [np.mean(losses[:4]), np.mean(losses[4:])], rel=1e-6)
    for k in w:
        np.testing.assert_allclose(sgd.params[k], w[k], rtol=1e-5, atol=1e-7)
    assert got["test_accuracy"] == accuracy(infer_g, w, x[100:], y[100:])
