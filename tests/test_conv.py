"""Convolution and pooling: the shape rule (the seed's worked example, PyTorch's output sizes as
the reference), errors that name the op, sizes and the user's line, a symbolic batch dim through
conv/pool/flatten into ONNX, the layers, and the CNN example in both engines."""
from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import onnx
import pytest

import graphdl as gd
import passes
from graphdl.nn import AvgPool2d, Conv1d, Conv2d, Dense, Flatten, MaxPool2d, Sequential

ROOT = Path(__file__).resolve().parents[1]


def test_seed_example_1d_conv_n5_f3_q1_s2_gives_3():
    """The chapter's example: N=5, F=3, Q=1, s=2 -> O = (5 - 3 + 2) / 2 + 1 = 3. Values by hand:
    the padded input [0,1,2,3,4,5,0] under the kernel [1,0,-1] at 0, 2, 4 -> -2, -2, 4."""
    b = gd.GraphBuilder("seed")
    x = b.input("x", [1, 1, 5])
    y = gd.conv(x, b.const(np.array([[[1.0, 0.0, -1.0]]], np.float32)), strides=2, pads=1)
    assert y.shape == (1, 1, 3)
    out = gd.run(b.build({"y": y}), {"x": np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5)})
    np.testing.assert_array_equal(out["y"], [[[-2, -2, 4]]])


def test_seed_example_through_the_layer():
    b = gd.GraphBuilder("seed")
    y = Conv1d(1, 4, 3, stride=2, padding=1)(b.input("x", ["N", 1, 5]))
    assert str(y.type) == "f32[N,4,3]"


def test_shape_rule_matches_torch_over_a_grid():
    """O = floor((N + 2Q - d(F-1) - 1) / s) + 1 for every combination, against torch."""
    torch = pytest.importorskip("torch")
    for n, f, q, s, d in itertools.product((5, 8, 9), (1, 2, 3), (0, 1, 2), (1, 2, 3), (1, 2)):
        if n + 2 * q < d * (f - 1) + 1:
            continue
        b = gd.GraphBuilder("g")
        x = b.input("x", ["N", 2, n, n + 1])
        y = gd.conv(x, b.param("w", np.zeros((3, 2, f, f), np.float32)), strides=s, pads=q,
                    dilations=d)
        ref = torch.nn.functional.conv2d(torch.zeros(1, 2, n, n + 1), torch.zeros(3, 2, f, f),
                                         stride=s, padding=q, dilation=d)
        assert y.shape[1:] == tuple(ref.shape[1:]), (n, f, q, s, d)


def test_pool_ceil_mode_sizes_match_torch():
    torch = pytest.importorskip("torch")
    for n, k, s, p in itertools.product((5, 6, 7), (2, 3), (1, 2, 3), (0, 1)):
        if p > k // 2:
            continue
        b = gd.GraphBuilder("g")
        x = b.input("x", ["N", 1, n, n])
        got = [gd.max_pool(x, k, s, p, ceil_mode=c).shape[2] for c in (False, True)]
        want = [torch.nn.functional.max_pool2d(torch.zeros(1, 1, n, n), k, s, p,
                                               ceil_mode=c).shape[2] for c in (False, True)]
        assert got == want, (n, k, s, p)


def test_bad_output_size_names_op_sizes_and_the_users_line():
    b = gd.GraphBuilder("bad")
    x = b.input("x", ["N", 1, 2, 8])
    w = b.param("w", np.zeros((4, 1, 5, 3), np.float32))
    with pytest.raises(gd.ShapeError) as e:
        gd.conv(x, w, strides=2, pads=1)
    msg = str(e.value)
    for part in ("conv", "input size 2", "kernel 5", "stride 2", "padding 1+1",
                 "test_conv.py:"):
        assert part in msg, (part, msg)


def test_pool_too_small_and_channel_mismatch_raise_shape_errors():
    b = gd.GraphBuilder("bad")
    x = b.input("x", ["N", 3, 3, 3])
    with pytest.raises(gd.ShapeError, match=r"max_pool.*input size 3, kernel 4"):
        gd.max_pool(x, 4)
    with pytest.raises(gd.ShapeError, match=r"3 channels.*takes 2"):
        gd.conv(x, b.param("w", np.zeros((4, 2, 3, 3), np.float32)))
    with pytest.raises(gd.ShapeError, match=r"conv2d1: expects inputs \[N, 1, S, S\]"):
        Conv2d(1, 4, 3)(x)


def test_symbolic_batch_stays_symbolic_into_onnx():
    b = gd.GraphBuilder("cnn")
    x = b.input("x", ["N", 1, 8, 8])
    net = Sequential(Conv2d(1, 4, 3, padding=1, activation="relu", seed=0), MaxPool2d(2),
                     Conv2d(4, 6, 3, stride=2, padding=1, seed=1), AvgPool2d(2), Flatten(),
                     Dense(6, 3, seed=2))
    h = net(x)
    assert str(h.type) == "f32[N,3]"
    g = b.build({"y": gd.global_avg_pool(gd.reshape(h, [-1, 3, 1, 1]))})
    model = gd.to_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    dim = model.graph.output[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "N"
    for n in (1, 5):
        feeds = {"x": np.random.default_rng(n).random((n, 1, 8, 8), np.float32)}
        ours, theirs = gd.run(g, feeds)["y"], gd.run(g, feeds, backend="ort")["y"]
        assert ours.shape == (n, 3, 1, 1)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_gradient_graph_is_standard_onnx_and_differentiable_again():
    """The CNN's gradient graph holds only standard ONNX ops (ConvTranspose for the input
    gradient, a Conv for the weight gradient; in float64, which onnxruntime has no Conv for,
    their im2col fallbacks) that onnxruntime runs, and can be differentiated once more; its
    second derivative matches finite differences."""
    b = gd.GraphBuilder("cnn")
    x = b.input("x", ["N", 2, 6, 6], "float64")
    h = Conv2d(2, 3, 3, stride=2, padding=1, activation="tanh", seed=0)(x)
    loss = gd.reduce_sum(gd.avg_pool(h, 2, 1) ** 2.0)
    gg = passes.grad(b.build({"loss": loss}), "loss", ["x", "conv2d1.W"])
    model = gd.to_onnx(gg)
    assert {n.domain for n in model.graph.node} <= {""}
    onnx.checker.check_model(model, full_check=True)
    x0 = {"x": np.random.default_rng(3).standard_normal((2, 2, 6, 6))}
    ours, theirs = gd.run(gg, x0), gd.run(gg, x0, backend="ort")
    for k in ours:
        np.testing.assert_allclose(theirs[k], ours[k], rtol=1e-10, atol=1e-12, err_msg=k)
    gb = gd.GraphBuilder.from_graph(gg)
    u = np.random.default_rng(0).standard_normal((3, 2, 3, 3))
    gu = gd.reduce_sum(gb.tensor(gg.value("conv2d1.W_grad")) * gb.const(u))
    sg = gb.build({"gu": gu})
    hg = passes.grad(sg, "gu", ["x"])
    feeds = {"x": np.random.default_rng(1).standard_normal((2, 2, 6, 6))}
    v = np.random.default_rng(2).standard_normal(feeds["x"].shape)
    eps = 1e-5
    fd = (gd.run(sg, {"x": feeds["x"] + eps * v})["gu"]
          - gd.run(sg, {"x": feeds["x"] - eps * v})["gu"]) / (2 * eps)
    analytic = np.sum(gd.run(hg, feeds)[hg.outputs[-1].name] * v)
    np.testing.assert_allclose(analytic, fd, rtol=1e-5)


def test_conv_layer_parameters_follow_onnx_layout():
    b = gd.GraphBuilder("g")
    layer = Conv2d(4, 6, (3, 2), groups=2, name="c")
    y = layer(b.input("x", ["N", 4, 7, 7]))
    params = layer.parameters(b)
    assert params["c.W"].shape == (6, 2, 3, 2) and params["c.b"].shape == (6,)
    assert str(y.type) == "f32[N,6,5,6]"


def _example():
    spec = importlib.util.spec_from_file_location("cnn_digits", ROOT / "examples" / "cnn_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cnn_example_trains_alike_in_both_engines():
    """Two epochs of examples/cnn_digits.py in each engine: the same losses step by step, and
    already well above chance (the full run reaches >= 0.97)."""
    ex = _example()
    runs = [ex.train(engine, epochs=2, verbose=False) for engine in ("numpy", "ort")]
    np.testing.assert_allclose(runs[0]["losses"][:20], runs[1]["losses"][:20], rtol=1e-3)
    for r in runs:
        assert r["test_accuracy"] >= 0.9, r["test_accuracy"]


def test_minibatch_sgd_momentum_matches_torch():
    """MinibatchSGD(momentum=0.9), used by the CNN example, takes torch.optim.SGD's steps."""
    torch = pytest.importorskip("torch")
    from graphdl.training.minibatch import MinibatchSGD, params_as_inputs

    b = gd.GraphBuilder("m")
    x, t = b.input("x", ["N", 2, 5, 5]), b.input("t", ["N", 3, 3, 3])
    layer = Conv2d(2, 3, 3, seed=0)
    g, params = params_as_inputs(b.build({"loss": gd.mse_loss(layer(x), t)}))
    sgd = MinibatchSGD(passes.grad(g, "loss", list(params)), params, lr=0.1, momentum=0.9)
    tw = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = torch.optim.SGD(list(tw.values()), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(4):
        xb = rng.standard_normal((4, 2, 5, 5)).astype(np.float32)
        tb = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        sgd.step({"x": xb, "t": tb})
        opt.zero_grad()
        y = torch.nn.functional.conv2d(torch.from_numpy(xb), tw["conv2d1.W"], tw["conv2d1.b"])
        torch.nn.functional.mse_loss(y, torch.from_numpy(tb)).backward()
        opt.step()
    for k, v in tw.items():
        np.testing.assert_allclose(sgd.params[k], v.detach().numpy(), rtol=1e-5, atol=1e-6)
