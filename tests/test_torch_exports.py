"""PyTorch-exported models that compute their loss inside forward: imported, differentiated by
graphdl, exported again, run in onnxruntime; every ``*_grad`` must match torch autograd."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import graphdl as gd
import passes

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

N_IN, N_HID, N_OUT = 4, 6, 3
ACTS = {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.05), "elu": nn.ELU(0.8),
        "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}


def bce(p, t):
    """torch's binary_cross_entropy written out (the TorchScript exporter has no symbolic for
    aten::binary_cross_entropy): logs clamped at -100 exactly as torch does."""
    return -(t * torch.clamp(torch.log(p), min=-100)
             + (1 - t) * torch.clamp(torch.log(1 - p), min=-100)).mean()


LOSSES = {
    "mse": lambda z, t: F.mse_loss(z, t),
    "bce": lambda z, t: bce(torch.sigmoid(z), t),
    "bce_logits": lambda z, t: F.binary_cross_entropy_with_logits(z, t),
    "ce": lambda z, t: F.cross_entropy(z, t),
}


class Net(nn.Module):
    """Two dense layers, a loss, and an optional L1 or L2 weight penalty, all in forward."""

    def __init__(self, act: str, loss: str, penalty: str | None):
        super().__init__()
        self.l1, self.act, self.l2 = nn.Linear(N_IN, N_HID), ACTS[act], nn.Linear(N_HID, N_OUT)
        self.loss, self.penalty = LOSSES[loss], penalty

    def forward(self, x, t):
        out = self.loss(self.l2(self.act(self.l1(x))), t)
        weights = (self.l1.weight, self.l2.weight)
        if self.penalty == "l1":
            out = out + 0.01 * sum(w.abs().sum() for w in weights)
        if self.penalty == "l2":
            out = out + 0.01 * sum((w ** 2).sum() for w in weights)
        return out


def feeds(loss: str, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_IN)).astype(np.float32)
    if loss == "ce":
        return {"x": x, "t": rng.integers(0, N_OUT, n).astype(np.int64)}
    t = rng.uniform(0, 1, (n, N_OUT)).astype(np.float32)
    return {"x": x, "t": t if loss != "mse" else t * 4 - 2}


def export(net: Net, loss: str, path, opset: int) -> None:
    ex = feeds(loss, 3, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, tuple(torch.from_numpy(v) for v in ex.values()), str(path),
                          opset_version=opset, dynamo=False, input_names=["x", "t"],
                          output_names=["loss"], dynamic_axes={"x": {0: "N"}, "t": {0: "N"}})


def torch_grads(net: Net, fd: dict) -> tuple[float, dict[str, np.ndarray]]:
    net.zero_grad()
    loss = net(*(torch.from_numpy(v) for v in fd.values()))
    loss.backward()
    return float(loss.detach()), {k: p.grad.numpy() for k, p in net.named_parameters()}


def assert_grads_match(got: dict, loss: float, grads: dict) -> None:
    np.testing.assert_allclose(got["loss"], loss, rtol=1e-5)
    for name, want in grads.items():
        err = np.max(np.abs(got[f"{name}_grad"] - want)) / max(np.max(np.abs(want)), 1e-12)
        assert err <= 1e-4, f"{name}: relative error {err:.2e}"


def ort_run(model_bytes: bytes, fd: dict) -> dict:
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, fd)))


CASES = [(act, "mse", None, 17) for act in ACTS] + [
    ("relu", "bce", None, 18), ("tanh", "bce_logits", None, 21), ("elu", "ce", None, 17),
    ("leaky_relu", "ce", "l2", 18), ("sigmoid", "mse", "l1", 21), ("tanh", "bce", "l2", 17)]


@pytest.mark.parametrize("act,loss,penalty,opset", CASES,
                         ids=["-".join(map(str, c)) for c in CASES])
def test_gradients_of_exported_models_match_autograd(tmp_path, act, loss, penalty, opset):
    torch.manual_seed(0)
    net = Net(act, loss, penalty)
    path = tmp_path / "net.onnx"
    export(net, loss, path, opset)
    g = gd.from_onnx(path)
    assert str(g.by_name["x"].type) == "f32[N,4]"
    params = [k for k, _ in net.named_parameters()]
    assert list(g.params) == params
    gg = passes.grad(g, "loss", params)
    fd = feeds(loss, 7, seed=2)  # another batch size than at export: N stays symbolic
    loss_value, want = torch_grads(net, fd)
    assert_grads_match(ort_run(gd.to_onnx(gg).SerializeToString(), fd), loss_value, want)
    assert_grads_match(gd.run(gg, fd), loss_value, want)


class Mixed(nn.Module):
    """Tensor code as people write it: view, a bare matmul with W.t(), slicing, cat, max,
    clamp and nll_loss. The exporter emits Shape/Gather/Unsqueeze/Concat/Reshape, Transpose,
    Slice, ReduceMax, Clip and SoftmaxCrossEntropyLoss for it."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(6, 5)
        self.w, self.b = nn.Parameter(torch.randn(3, 5)), nn.Parameter(torch.randn(3))

    def forward(self, x, y, labels):
        h = torch.tanh(self.l1(x.view(x.size(0), -1)))
        z = h @ self.w.t() + self.b
        out = F.nll_loss(F.log_softmax(z, 1), labels) + (z[:, :2] - y[:, 1:]).pow(2).mean()
        out = out + torch.cat([z, y], 1).max(dim=1).values.mean()
        return out + torch.relu(z).clamp(max=1.0).mean() + F.softmax(z, -1)[:, 0].mean()


@pytest.mark.parametrize("opset", [17, 21])
def test_gradients_of_tensor_code_with_shape_arithmetic(tmp_path, opset):
    """do_constant_folding=False: with folding on, the exporter would store w.t() as a new
    initializer, and the gradient would be with respect to that copy."""
    torch.manual_seed(5)
    net, rng = Mixed(), np.random.default_rng(6)
    ex = (torch.randn(4, 2, 3), torch.rand(4, 3), torch.tensor([0, 2, 1, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, ex, str(tmp_path / "m.onnx"), opset_version=opset, dynamo=False,
                          do_constant_folding=False, input_names=["x", "y", "labels"],
                          output_names=["loss"],
                          dynamic_axes={k: {0: "N"} for k in ("x", "y", "labels")})
    g = gd.from_onnx(tmp_path / "m.onnx")
    params = [k for k, _ in net.named_parameters()]
    gg = passes.grad(g, "loss", params)
    fd = {"x": rng.standard_normal((6, 2, 3)).astype(np.float32),
          "y": rng.uniform(size=(6, 3)).astype(np.float32),
          "labels": rng.integers(0, 3, 6).astype(np.int64)}
    loss_value, want = torch_grads(net, fd)
    assert_grads_match(ort_run(gd.to_onnx(gg).SerializeToString(), fd), loss_value, want)


def test_bce_written_out_equals_torch_bce():
    p, t = torch.rand(5, 3) * 0.98 + 0.01, torch.rand(5, 3)
    torch.testing.assert_close(bce(p, t), F.binary_cross_entropy(p, t))


def test_cli_grad_of_a_torch_export(tmp_path):
    """The whole path through the command line, for a cross-entropy classifier with L2."""
    torch.manual_seed(3)
    net = Net("relu", "ce", "l2")
    export(net, "ce", tmp_path / "net.onnx", 17)
    r = subprocess.run([sys.executable, "-m", "graphdl", "grad", "net.onnx", "-o", "g.onnx"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    model = onnx.load(tmp_path / "g.onnx")
    names = [k for k, _ in net.named_parameters()]
    assert [o.name for o in model.graph.output] == ["loss"] + [f"{k}_grad" for k in names]
    fd = feeds("ce", 9, seed=4)
    loss_value, want = torch_grads(net, fd)
    assert_grads_match(ort_run(model.SerializeToString(), fd), loss_value, want)
