"""Batch norm, dropout and the sparsity penalties against PyTorch: values, gradients, running
statistics, and a batch-norm MLP trained by the exported step next to torch.nn.BatchNorm1d."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl import nn, optim

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _bn_graph(shape, momentum=0.1):
    b = gd.GraphBuilder("bn")
    c = shape[1]
    x = b.input("x", ["N", *shape[1:]], "float64")
    vecs = [b.input(n, [c], "float64") for n in ("gamma", "beta", "rm", "rv")]
    y, m, v = gd.batch_norm_train(x, *vecs, momentum=momentum)
    loss = gd.reduce_sum(y * b.input("r", ["N", *shape[1:]], "float64"))
    return b.build({"y": y, "new_mean": m, "new_var": v, "loss": loss})


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 2)], ids=["NC", "NCHW"])
def test_batch_norm_training_matches_torch(shape):
    rng = np.random.default_rng(0)
    c = shape[1]
    feeds = {"x": rng.standard_normal(shape) * 2 + 1, "gamma": rng.standard_normal(c),
             "beta": rng.standard_normal(c), "rm": rng.standard_normal(c),
             "rv": rng.random(c) + 0.5, "r": rng.standard_normal(shape)}
    g = _bn_graph(shape, momentum=0.3)
    gg = passes.grad(g, "loss", ["x", "gamma", "beta"])
    ours = gd.run(gg, feeds)
    t = {k: torch.tensor(v, requires_grad=k in ("x", "gamma", "beta")) for k, v in feeds.items()}
    rm, rv = t["rm"].clone(), t["rv"].clone()
    y = F.batch_norm(t["x"], rm, rv, t["gamma"], t["beta"], training=True, momentum=0.3)
    (y * t["r"]).sum().backward()
    np.testing.assert_allclose(ours["y"], y.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours["new_mean"], rm.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours["new_var"], rv.numpy(), rtol=1e-10)
    for k in ("x", "gamma", "beta"):
        np.testing.assert_allclose(ours[f"{k}_grad"], t[k].grad.numpy(), rtol=1e-8, atol=1e-10)
    theirs = gd.run(gg, feeds, backend="ort")
    for k in ours:
        np.testing.assert_allclose(theirs[k], ours[k], rtol=1e-9, atol=1e-12)


def test_exported_batch_norm_train_never_uses_training_mode():
    """The export of batch_norm_train computes the batch statistics itself: onnxruntime's CUDA
    provider runs a three-output (opset 14) training-mode BatchNormalization as inference
    with the given running statistics, so a file using it would train wrongly there."""
    from graphdl.onnx.export import to_onnx

    g = passes.grad(_bn_graph((4, 3, 5, 2)), "loss", ["x", "gamma", "beta"])
    bns = [n for n in to_onnx(g).graph.node if n.op_type == "BatchNormalization"]
    assert bns and all(a.i == 0 for n in bns for a in n.attribute if a.name == "training_mode")
    assert all(len(n.output) == 1 for n in bns)


def test_batch_norm_inference_uses_population_statistics():
    rng = np.random.default_rng(1)
    layer = nn.BatchNorm(4)
    layer.training = False
    b = gd.GraphBuilder("bn_eval")
    g = b.build({"y": layer(b.input("x", ["N", 4, 3, 3], "float64"))})
    assert [n.op for n in g.nodes] == ["batch_norm"]
    x = rng.standard_normal((2, 4, 3, 3))
    stats = {"batchnorm1.running_mean": rng.standard_normal(4),
             "batchnorm1.running_var": rng.random(4) + 0.5,
             "batchnorm1.gamma": rng.standard_normal(4), "batchnorm1.beta": rng.standard_normal(4)}
    g, _ = gd.train.params_as_inputs(g)
    want = F.batch_norm(torch.tensor(x), torch.tensor(stats["batchnorm1.running_mean"]),
                        torch.tensor(stats["batchnorm1.running_var"]),
                        torch.tensor(stats["batchnorm1.gamma"]),
                        torch.tensor(stats["batchnorm1.beta"]), training=False).numpy()
    for backend in ("numpy", "ort"):
        got = gd.run(g, {"x": x, **stats}, backend=backend)["y"]
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=backend)
    assert [n.op_type for n in gd.to_onnx(g).graph.node] == ["BatchNormalization"]


def test_dropout_with_fed_mask_matches_torch_and_inference_is_identity():
    rng = np.random.default_rng(2)
    layer = nn.Dropout(0.25)
    b = gd.GraphBuilder("drop")
    x = b.input("x", ["N", 6], "float64")
    y = layer(x)
    r = rng.standard_normal(6)
    g = b.build({"y": y, "loss": gd.reduce_sum(y * b.const(r))})
    assert g.inputs[1].name == "dropout1.mask" and g.inputs[1].type.shape == x.shape
    xv, mask = rng.standard_normal((5, 6)), (rng.random((5, 6)) >= 0.25).astype(np.float64)
    ours = gd.run(passes.grad(g, "loss", ["x"]), {"x": xv, "dropout1.mask": mask})
    tx = torch.tensor(xv, requires_grad=True)
    ty = tx * torch.tensor(mask) / 0.75
    (ty * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(ours["y"], ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours["x_grad"], tx.grad.numpy(), rtol=1e-12)
    layer.training = False
    x2 = gd.GraphBuilder("drop_eval").input("x", ["N", 6], "float64")
    assert layer(x2) is x2


def test_kl_sparsity_value_and_gradient_match_torch():
    rng = np.random.default_rng(3)
    hv = 1 / (1 + np.exp(-rng.standard_normal((7, 5))))
    b = gd.GraphBuilder("kl")
    h = b.input("h", ["N", 5], "float64")
    g = b.build({"kl": nn.kl_sparsity(h, 0.05), "l1": nn.l1_activity(h)})
    out = gd.run(passes.grad(g, "kl", ["h"]), {"h": hv})
    th = torch.tensor(hv, requires_grad=True)
    hb = th.mean(0)
    kl = (0.05 * torch.log(0.05 / hb) + 0.95 * torch.log(0.95 / (1 - hb))).sum()
    kl.backward()
    np.testing.assert_allclose(out["kl"], kl.item(), rtol=1e-12)
    np.testing.assert_allclose(out["h_grad"], th.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(out["l1"], np.abs(hv).sum(1).mean(), rtol=1e-12)


def test_batch_norm_mlp_training_step_matches_torch_module():
    """Dense -> BatchNorm -> ReLU -> Dense trained 5 SGD steps: parameters and running
    statistics equal torch.nn.BatchNorm1d's, running statistics as carried step state."""
    rng = np.random.default_rng(4)
    d1, bn, d2 = nn.Dense(4, 6, name="d1"), nn.BatchNorm(6, momentum=0.2, name="bn"), \
        nn.Dense(6, 2, name="d2")
    b = gd.GraphBuilder("bn_mlp")
    x, t = b.input("x", ["N", 4], "float64"), b.input("t", ["N", 2], "float64")
    fwd = b.build({"loss": gd.mse_loss(d2(gd.relu(bn(d1(x)))), t)})
    step = passes.training_step(fwd, optim.SGD(lr=0.1))
    kinds = {e["input"]: e["kind"] for e in step.manifest["state"]}
    assert kinds["bn.running_mean"] == "running_stat" and kinds["bn.gamma"] == "param"
    tm = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6, momentum=0.2),
                             torch.nn.ReLU(), torch.nn.Linear(6, 2)).double()
    with torch.no_grad():
        for i, name in ((0, "d1"), (3, "d2")):
            tm[i].weight.copy_(torch.tensor(step.initial[f"{name}.W"].T))
            tm[i].bias.copy_(torch.tensor(step.initial[f"{name}.b"]))
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    state, hp = dict(step.initial), step.hyperparam_feeds()
    for _ in range(5):
        xv, tv = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
        state = step.carry(gd.run(step.graph, {"x": xv, "t": tv, **state, **hp}, backend="ort"))
        topt.zero_grad()
        F.mse_loss(tm(torch.tensor(xv)), torch.tensor(tv)).backward()
        topt.step()
    np.testing.assert_allclose(state["bn.running_mean"], tm[1].running_mean.numpy(), rtol=1e-9)
    np.testing.assert_allclose(state["bn.running_var"], tm[1].running_var.numpy(), rtol=1e-9)
    np.testing.assert_allclose(state["bn.gamma"], tm[1].weight.detach().numpy(), rtol=1e-9)
    np.testing.assert_allclose(state["d1.W"], tm[0].weight.detach().numpy().T, rtol=1e-9)


class _TorchTrainingModel(torch.nn.Module):
    """Training-mode batch norm (1-d and 2-d), dropout with a given mask and a KL-sparse
    autoencoder loss, all inside forward, as PyTorch users write them."""

    def __init__(self):
        super().__init__()
        tnn = torch.nn
        self.l1, self.bn, self.l2 = tnn.Linear(4, 6), tnn.BatchNorm1d(6), tnn.Linear(6, 3)
        self.conv, self.bn2 = tnn.Conv2d(2, 3, 3), tnn.BatchNorm2d(3)
        self.enc, self.dec = tnn.Linear(4, 3), tnn.Linear(3, 4)

    def forward(self, x, img, t, mask):
        h = torch.relu(self.bn(self.l1(x))) * mask / 0.7
        loss = F.mse_loss(self.l2(h), t) + self.bn2(self.conv(img)).pow(2).mean()
        code = torch.sigmoid(self.enc(x))
        hb = code.mean(0)
        kl = (0.05 * torch.log(0.05 / hb) + 0.95 * torch.log(0.95 / (1 - hb))).sum()
        return loss + F.mse_loss(self.dec(code), x) + 0.1 * kl


def test_graphdl_grad_of_pytorch_training_mode_export_matches_autograd(tmp_path):
    import warnings

    torch.manual_seed(0)
    net = _TorchTrainingModel().train()
    rng = np.random.default_rng(5)
    fd = {"x": rng.standard_normal((7, 4)), "img": rng.standard_normal((7, 2, 5, 5)),
          "t": rng.standard_normal((7, 3)), "mask": (rng.random((7, 6)) >= 0.3) * 1.0}
    fd = {k: v.astype(np.float32) for k, v in fd.items()}
    path = str(tmp_path / "train_mode.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, tuple(torch.from_numpy(v[:3]) for v in fd.values()), path,
                          opset_version=17, dynamo=False, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.TRAINING, input_names=list(fd),
                          output_names=["loss"], dynamic_axes={k: {0: "N"} for k in fd})
    g = gd.from_onnx(path)
    assert sum(n.op == "batch_norm_train" for n in g.nodes) == 2
    params = [k for k, _ in net.named_parameters()]
    gg = passes.grad(g, "loss", params)
    loss = net(*(torch.from_numpy(v) for v in fd.values()))
    loss.backward()
    for backend in ("numpy", "ort"):
        got = gd.run(gg, fd, backend=backend)
        np.testing.assert_allclose(got["loss"], loss.item(), rtol=1e-5)
        for name, p in net.named_parameters():
            want = p.grad.numpy()  # l1.bias's is ~0 (batch norm removes a shift): floor 1e-2
            err = np.max(np.abs(got[f"{name}_grad"] - want)) / max(np.max(np.abs(want)), 1e-2)
            assert err <= 1e-4, f"{backend} {name}: relative error {err:.2e}"


def test_imported_training_batch_norm_follows_onnx_running_statistics():
    """ONNX: running = momentum * running + (1 - momentum) * batch, biased variance."""
    from onnx import TensorProto, helper

    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"],
                            epsilon=1e-5, momentum=0.8, training_mode=1)
    vec = [helper.make_tensor_value_info(n, TensorProto.DOUBLE, [3]) for n in "sbmv"]
    graph = helper.make_graph([node], "bn", [helper.make_tensor_value_info(
        "x", TensorProto.DOUBLE, [4, 3])] + vec, [helper.make_tensor_value_info(
            n, TensorProto.DOUBLE, None) for n in ("y", "rm", "rv")])
    g = gd.from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]))
    rng = np.random.default_rng(6)
    x, m, v = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.random(3) + 0.5
    out = gd.run(g, {"x": x, "s": np.ones(3), "b": np.zeros(3), "m": m, "v": v})
    # momentum is a float32 attribute in ONNX, hence rtol 1e-6
    np.testing.assert_allclose(out["rm"], 0.8 * m + 0.2 * x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(out["rv"], 0.8 * v + 0.2 * x.var(0), rtol=1e-6)
    np.testing.assert_allclose(out["y"], (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5),
                               rtol=1e-10)


@pytest.mark.parametrize("opset, attrs", [(12, {}), (9, {}), (6, {"is_test": 0})])
def test_old_opset_training_batch_norm_follows_onnx(opset, attrs):
    """Before opset 14 training mode is the node's extra outputs (opset 7-13: y, running mean
    and variance, the batch's mean and variance) or ``is_test=0`` (opset 6), as PyTorch's
    exporter writes a model in .train() mode at those opsets."""
    from onnx import TensorProto, helper

    outs = ["y", "rm", "rv", "sm", "sv"]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], outs,
                            epsilon=1e-5, momentum=0.7, **attrs)
    vec = [helper.make_tensor_value_info(n, TensorProto.DOUBLE, [3]) for n in "sbmv"]
    graph = helper.make_graph([node], "bn", [helper.make_tensor_value_info(
        "x", TensorProto.DOUBLE, [4, 3, 2])] + vec, [helper.make_tensor_value_info(
            n, TensorProto.DOUBLE, None) for n in outs])
    g = gd.from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))
    rng = np.random.default_rng(opset)
    x, m, v = rng.standard_normal((4, 3, 2)), rng.standard_normal(3), rng.random(3) + 0.5
    s, b = rng.standard_normal(3), rng.standard_normal(3)
    out = gd.run(g, {"x": x, "s": s, "b": b, "m": m, "v": v})
    mean, var = x.mean((0, 2)), x.var((0, 2))
    want_y = (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5) * s[:, None] + b[:, None]
    np.testing.assert_allclose(out["y"], want_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["rm"], 0.7 * m + 0.3 * mean, rtol=1e-6)
    np.testing.assert_allclose(out["rv"], 0.7 * v + 0.3 * var, rtol=1e-6)
    np.testing.assert_allclose(out["sm"], mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["sv"], var, rtol=1e-10)


@pytest.mark.parametrize("opset", [9, 12, 14])
def test_torch_training_mode_export_matches_torch(opset):
    """A conv + batch-norm net exported by PyTorch in .train() mode at old and new opsets:
    graphdl's output uses the batch's statistics, as torch's training forward does."""
    import io
    import warnings

    import onnx

    nn = torch.nn
    torch.manual_seed(opset)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Flatten(), nn.Linear(64, 5), nn.BatchNorm1d(5)).train()
    x = torch.randn(6, 3, 4, 4)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), buf, opset_version=opset, dynamo=False,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                          input_names=["x"], output_names=["y"])
    with torch.no_grad():
        want = net(x).numpy()
    got = gd.run(gd.from_onnx(onnx.load_from_string(buf.getvalue())), {"x": x.numpy()})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opset", [9, 14])
def test_gradients_of_a_torch_training_mode_export_match_autograd(opset):
    """conv, batch norm (training), ReLU, max pool, linear, batch norm and an MSE loss in
    forward, exported in .train() mode: passes.grad w.r.t. every parameter equals autograd."""
    import io
    import warnings

    import onnx

    import passes

    nn = torch.nn
    torch.manual_seed(opset)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 5),
                        nn.BatchNorm1d(5)).train()

    class WithLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x, t):
            return ((self.net(x) - t) ** 2).mean()

    model = WithLoss()
    x, t = torch.randn(6, 3, 4, 4), torch.randn(6, 5)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x, t), buf, opset_version=opset, dynamo=False,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                          input_names=["x", "t"], output_names=["loss"])
    g = gd.from_onnx(onnx.load_from_string(buf.getvalue()))
    names = [n for n, _ in model.named_parameters()]
    got = gd.run(passes.grad(g, "loss", names), {"x": x.numpy(), "t": t.numpy()})
    model(x, t).backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(got[f"{name}_grad"], p.grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)


def test_dropout_with_in_graph_random_mask_has_the_right_statistics():
    """Drawn in each engine: about `rate` of the units dropped, the rest scaled by 1/(1-rate),
    a different mask on every run. onnxruntime 1.32 implements RandomUniformLike only at
    opsets <= 21, so that is the opset exported here."""
    import onnxruntime as ort

    b = gd.GraphBuilder("random_drop")
    x = b.input("x", ["N", 100], "float64")
    g = b.build({"y": nn.Dropout(0.3, mask="random")(x)})
    assert "random_uniform_like" in [n.op for n in g.nodes]
    ones = np.ones((200, 100))
    sess = ort.InferenceSession(gd.to_onnx(g, opset=21).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    engines = {"numpy": lambda: gd.run(g, {"x": ones})["y"],
               "ort": lambda: sess.run(["y"], {"x": ones})[0]}
    for backend, run in engines.items():
        y1, y2 = run(), run()
        assert abs(np.mean(y1 == 0) - 0.3) < 0.015, backend
        np.testing.assert_allclose(y1[y1 != 0], 1 / 0.7)
        assert np.mean(y1 != y2) > 0.2, f"{backend} drew the same mask twice"


def test_set_training_switches_nested_layers_to_their_inference_graphs():
    bn, drop = nn.BatchNorm(4), nn.Dropout(0.5)
    ae = nn.Autoencoder(nn.Sequential(nn.Dense(4, 4, seed=1), bn, drop), nn.Dense(4, 4, seed=2))
    nn.set_training(ae, False)
    b = gd.GraphBuilder("eval")
    g = b.build({"y": ae(b.input("x", ["N", 4], "float64"))})
    assert [v.name for v in g.inputs] == ["x"]  # no dropout mask input
    assert "batch_norm" in {n.op for n in g.nodes} and "dropout" not in {n.op for n in g.nodes}
    nn.set_training(ae, True)
    assert bn.training and drop.training


def test_user_errors_name_the_op_and_shapes():
    b = gd.GraphBuilder("errors")
    x = b.input("x", ["N", 4], "float64")
    with pytest.raises(gd.ShapeError, match=r"dropout at .*\[N,4\] with \[N,5\]"):
        gd.dropout(x, b.input("m", ["N", 5], "float64"), 0.5)
    with pytest.raises(gd.GraphError, match="rate must be in"):
        nn.Dropout(1.0)
    with pytest.raises(gd.ShapeError, match=r"batchnorm1: expects \(N, 3, \.\.\.\) input"):
        nn.BatchNorm(3)(x)
    with pytest.raises(gd.ShapeError, match=r"per-channel inputs must be \[4\]"):
        v3 = b.input("v3", [3], "float64")
        gd.batch_norm(x, v3, v3, v3, v3)


def test_pytorch_exported_training_model_becomes_a_training_step(tmp_path):
    """A PyTorch model exported in train mode, imported, turned into a training step and run in
    onnxruntime: 3 SGD steps match torch's parameters and running mean (ONNX updates the running
    variance with the biased batch variance, so that one differs from torch by n/(n-1))."""
    import warnings

    torch.manual_seed(1)
    tm = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5), torch.nn.Tanh(),
                             torch.nn.Linear(5, 2)).train()

    class WithLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = tm

        def forward(self, x, t):
            return F.mse_loss(self.net(x), t)

    path = str(tmp_path / "m.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(WithLoss(), (torch.randn(3, 4), torch.randn(3, 2)), path,
                          opset_version=17, dynamo=False, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.TRAINING, input_names=["x", "t"],
                          output_names=["loss"], dynamic_axes={"x": {0: "N"}, "t": {0: "N"}})
    step = passes.training_step(gd.from_onnx(path), optim.SGD(lr=0.1))
    assert {e["input"]: e["kind"] for e in step.manifest["state"]}["net.1.running_mean"] == \
        "running_stat"
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    rng = np.random.default_rng(7)
    state, hp = dict(step.initial), step.hyperparam_feeds()
    for _ in range(3):
        x, t = rng.standard_normal((8, 4), np.float32), rng.standard_normal((8, 2), np.float32)
        state = step.carry(gd.run(step.graph, {"x": x, "t": t, **state, **hp}, backend="ort"))
        topt.zero_grad()
        F.mse_loss(tm(torch.from_numpy(x)), torch.from_numpy(t)).backward()
        topt.step()
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(state[f"net.{name}"], p.detach().numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=name)
    np.testing.assert_allclose(state["net.1.running_mean"], tm[1].running_mean.numpy(),
                               rtol=1e-5, atol=1e-7)
