"""Whole training steps exported as standard ONNX: default domain only, full checker, symbolic
batch, run by stock onnxruntime at batch 1, 7 and 128, and the same loss curve over 50 steps in
onnxruntime and in the interpreter (float64) for every model family the issue names."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import graphdl as gd
import passes
from graphdl import nn, optim
from graphdl.training.step import TrainStep

F64 = "float64"


def _mlp_adam_l2():
    b = gd.GraphBuilder("mlp_adam_l2")
    net = nn.MLP((6, 16, 3), "relu", seed=1)
    x, y = b.input("x", ["N", 6], F64), b.input("y", ["N"], "int64")
    loss = gd.softmax_cross_entropy(net(x), y) + nn.l2_penalty(
        nn.weights_of(net.parameters(b)), 1e-3)
    return b.build({"loss": loss}), optim.Adam(lr=0.01)


def _mlp_dropout_momentum():
    b = gd.GraphBuilder("mlp_dropout")
    d1, d2 = nn.Dense(6, 16, "relu", seed=2), nn.Dense(16, 3, seed=3)
    x, y = b.input("x", ["N", 6], F64), b.input("y", ["N"], "int64")
    loss = gd.softmax_cross_entropy(d2(nn.Dropout(0.3)(d1(x))), y)
    return b.build({"loss": loss}), optim.SGD(lr=0.05, momentum=0.9)


def _gru_adagrad():
    b = gd.GraphBuilder("gru_adagrad")
    rng, hid = np.random.default_rng(4), 5
    x = b.input("x", [4, "N", 6], F64)
    w = b.param("gru.W", rng.standard_normal((1, 3 * hid, 6)) * 0.3)
    r = b.param("gru.R", rng.standard_normal((1, 3 * hid, hid)) * 0.3)
    bias = b.param("gru.B", np.zeros((1, 6 * hid)))
    _, h_last = gd.gru(x, w, r, bias)
    out = nn.Dense(hid, 3, seed=5)(gd.squeeze(h_last, (0,)))
    return b.build({"loss": gd.softmax_cross_entropy(out, b.input("y", ["N"], "int64"))}), \
        optim.Adagrad(lr=0.05)


def _kl_autoencoder_adadelta():
    b = gd.GraphBuilder("kl_ae")
    ae = nn.Autoencoder(nn.Dense(6, 3, "sigmoid", seed=6), nn.Dense(3, 6, seed=7))
    loss, _, _ = ae.loss(b.input("x", ["N", 6], F64), penalty="kl", eta=0.1, rho=0.05)
    return b.build({"loss": loss}), optim.Adadelta()


def _mlp_batchnorm():
    b = gd.GraphBuilder("mlp_bn")
    net = nn.Sequential(nn.Dense(6, 16, seed=8), nn.BatchNorm(16), gd.relu, nn.Dense(16, 3, seed=9))
    x, y = b.input("x", ["N", 6], F64), b.input("y", ["N"], "int64")
    return b.build({"loss": gd.softmax_cross_entropy(net(x), y)}), optim.SGD(lr=0.1)


def _cnn_dropout_momentum(dtype: str = F64):
    b = gd.GraphBuilder("cnn_dropout")
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, activation="relu", seed=10),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25),
                        nn.Dense(4 * 4 * 4, 3, seed=11))
    x, y = b.input("x", ["N", 1, 8, 8], dtype), b.input("y", ["N"], "int64")
    return b.build({"loss": gd.softmax_cross_entropy(net(x), y)}), \
        optim.SGD(lr=0.05, momentum=0.9)


CASES = {"mlp_adam_l2": _mlp_adam_l2, "cnn_dropout_momentum": _cnn_dropout_momentum,
         "mlp_dropout_momentum": _mlp_dropout_momentum,
         "gru_adagrad": _gru_adagrad, "kl_autoencoder_adadelta": _kl_autoencoder_adadelta,
         "mlp_batchnorm": _mlp_batchnorm}


def _ort_session(step):
    import onnxruntime as ort

    return ort.InferenceSession(step.to_onnx().SerializeToString(),
                                providers=["CPUExecutionProvider"])


def _batch(step, rng, n: int) -> dict[str, np.ndarray]:
    """Random feeds for the step's batch inputs and masks, with the batch dim N = n."""
    feeds = {}
    for spec in step.manifest["batch_inputs"]:
        shape = [n if d == "N" else d for d in spec["shape"]]
        if spec["dtype"] == "int64":
            feeds[spec["name"]] = rng.integers(0, 3, shape)
        else:
            feeds[spec["name"]] = rng.standard_normal(shape)
    return {**feeds, **step.draw_masks(rng, feeds)}


def _curve(step, backend: str, n_steps: int = 50) -> list[float]:
    rng = np.random.default_rng(11)
    state, hp, losses = dict(step.initial), step.hyperparam_feeds(), []
    for _ in range(n_steps):
        out = gd.run(step.graph, {**_batch(step, rng, 16), **state, **hp}, backend=backend)
        losses.append(float(out["loss"]))
        state = step.carry(out)
    return losses


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    fwd, opt = CASES[request.param]()
    return request.param, passes.training_step(fwd, opt)


def test_export_is_standard_onnx_with_symbolic_batch(case, tmp_path):
    name, step = case
    paths = step.save(str(tmp_path))
    model = onnx.load(paths["onnx"])
    onnx.checker.check_model(model, full_check=True)
    assert {n.domain for n in model.graph.node} <= {""}, name
    assert [o.domain for o in model.opset_import] == [""]
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
            for i in model.graph.input}
    assert "N" in dims[model.graph.input[0].name]
    manifest = json.load(open(paths["manifest"]))
    outs = {o.name for o in model.graph.output}
    ins = {i.name for i in model.graph.input}
    assert manifest["next_step"] and all(o in outs and i in ins
                                         for o, i in manifest["next_step"].items())
    assert set(np.load(paths["initial"]).files) == set(manifest["next_step"].values())


@pytest.mark.parametrize("name", list(CASES))
def test_saved_step_loads_back_as_the_same_step(name, tmp_path):
    """TrainStep.load imports the written ONNX file: the same step, run in the interpreter."""
    step = passes.training_step(*CASES[name]())
    step.save(str(tmp_path))
    loaded = TrainStep.load(str(tmp_path))
    assert loaded.manifest == step.manifest
    feeds = {**_batch(step, np.random.default_rng(0), 5), **step.initial,
             **step.hyperparam_feeds()}
    want, got = gd.run(step.graph, feeds), gd.run(loaded.graph, feeds)
    # the loaded step runs batch norm as its exported decomposition, the built one as
    # batch_norm_core's kernel: float64 rounding apart (a few 1e-12 relative)
    for k in step.next_step:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-11, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("n", [1, 7, 128])
def test_stock_onnxruntime_runs_the_step_at_any_batch(case, n):
    name, step = case
    sess = _ort_session(step)
    feeds = {**_batch(step, np.random.default_rng(n), n), **step.initial,
             **step.hyperparam_feeds()}
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(names, feeds)))
    want = gd.run(step.graph, feeds)
    for k in names:
        assert np.all(np.isfinite(got[k])), f"{name} {k} at batch {n}"
        np.testing.assert_allclose(got[k], want[k], rtol=1e-8, atol=1e-10, err_msg=f"{name} {k}")


def test_fifty_steps_same_loss_curve_in_both_engines(case):
    name, step = case
    ours, theirs = _curve(step, "numpy"), _curve(step, "ort")
    np.testing.assert_allclose(theirs, ours, rtol=1e-6, err_msg=name)
    assert np.mean(ours[-10:]) < np.mean(ours[:10]), f"{name} did not learn: {ours[::10]}"


def test_cnn_with_dropout_float32_steps_agree_across_engines():
    """The CNN case in float32, where onnxruntime has every kernel: 20 steps, rtol 1e-4."""
    step32 = passes.training_step(*_cnn_dropout_momentum("float32"))
    rng, curves = np.random.default_rng(3), {}
    batches = []
    for _ in range(20):
        feeds = _batch(step32, rng, 16)
        batches.append({k: v.astype(np.float32) if v.dtype == np.float64 else v
                        for k, v in feeds.items()})
    for backend in ("numpy", "ort"):
        state, hp, losses = dict(step32.initial), step32.hyperparam_feeds(), []
        for feeds in batches:
            out = gd.run(step32.graph, {**feeds, **state, **hp}, backend=backend)
            losses.append(float(out["loss"]))
            state = step32.carry(out)
        curves[backend] = losses
    np.testing.assert_allclose(curves["ort"], curves["numpy"], rtol=1e-4)
    assert curves["numpy"][-1] < curves["numpy"][0]
