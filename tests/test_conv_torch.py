"""PyTorch-exported CNN models (conv with stride 2 and padding 1 over several channels, max pool,
average pool, flatten, a LeNet-like stack) with the loss computed inside forward: imported,
differentiated by graphdl, run in graphdl's interpreter and (exported again) in onnxruntime;
the gradient of every parameter and of the input must match torch autograd (max relative error
<= 1e-4, float32)."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from sklearn.datasets import load_digits

import graphdl as gd
import passes

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional


def mse(y, t):
    return ((y - t) ** 2).mean()


class ConvStride(nn.Module):
    """conv 3 -> 6 channels, 3x3, stride 2, padding 1, then conv 6 -> 4, 2x2, dilation 2 in
    2 groups."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(6, 4, 2, dilation=2, groups=2)

    def forward(self, x, t):
        return mse(self.c2(torch.tanh(self.c1(x))), t)


class MaxPoolNet(nn.Module):
    """conv, ReLU, max pool 2 (and a 3x3 / stride 2 / pad 1 max pool with overlaps)."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(2, 4, 3, padding=1)

    def forward(self, x, t):
        h = F.max_pool2d(F.relu(self.c(x)), 2)
        return mse(F.max_pool2d(h, 3, stride=2, padding=1), t)


class AvgPoolNet(nn.Module):
    """conv, average pool 2, and a 3x3 / stride 2 / pad 1 average pool with ceil_mode."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(2, 4, 3, stride=1, padding=1)

    def forward(self, x, t):
        h = F.avg_pool2d(torch.tanh(self.c(x)), 2)
        return mse(F.avg_pool2d(h, 3, stride=2, padding=1, ceil_mode=True,
                                count_include_pad=False), t)


class FlattenNet(nn.Module):
    """conv then flatten (ONNX Flatten) into a linear layer."""

    def __init__(self):
        super().__init__()
        self.c, self.fc = nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.Linear(3 * 4 * 4, 5)

    def forward(self, x, t):
        return mse(self.fc(torch.flatten(torch.tanh(self.c(x)), 1)), t)


class LeNet(nn.Module):
    """conv-ReLU-maxpool, conv-ReLU-avgpool, view (Shape/Gather/Reshape), dense-ReLU-dense,
    cross-entropy over the labels."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(6, 16, 3)
        self.f1, self.f2 = nn.Linear(16 * 3 * 3, 32), nn.Linear(32, 10)

    def forward(self, x, t):
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = F.avg_pool2d(F.relu(self.c2(h)), 2)
        return F.cross_entropy(self.f2(F.relu(self.f1(h.view(h.size(0), -1)))), t)


def _images(shape: tuple, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _digits(n: int, size: int) -> np.ndarray:
    """Real digit images (ties in every max-pool window of blank background), tiled up."""
    x = load_digits().images[:n] / 16.0
    reps = size // 8
    return np.kron(x, np.ones((reps, reps)))[:, None].astype(np.float32)


# name -> (module, x shape, target maker)
MODELS = {
    "conv_stride2": (ConvStride, (3, 9, 8), lambda n, r: r.standard_normal((n, 4, 3, 2))),
    "max_pool": (MaxPoolNet, (2, 8, 8), lambda n, r: r.standard_normal((n, 4, 2, 2))),
    "avg_pool": (AvgPoolNet, (2, 8, 8), lambda n, r: r.standard_normal((n, 4, 3, 3))),
    "flatten": (FlattenNet, (2, 8, 8), lambda n, r: r.standard_normal((n, 5))),
    "lenet": (LeNet, (1, 16, 16), lambda n, r: r.integers(0, 10, n)),
}


def feeds(name: str, n: int, seed: int) -> dict[str, np.ndarray]:
    _, shape, target = MODELS[name]
    rng = np.random.default_rng(seed)
    x = _digits(n, shape[-1]) if name == "lenet" else _images((n, *shape), seed)
    t = target(n, rng)
    return {"x": x, "t": t.astype(np.int64 if t.dtype.kind == "i" else np.float32)}


def export(net: nn.Module, name: str, path, opset: int = 17) -> None:
    ex = feeds(name, 3, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, tuple(torch.from_numpy(v) for v in ex.values()), str(path),
                          opset_version=opset, dynamo=False, input_names=["x", "t"],
                          output_names=["loss"], dynamic_axes={"x": {0: "N"}, "t": {0: "N"}})


def torch_grads(net: nn.Module, fd: dict) -> tuple[float, dict[str, np.ndarray]]:
    net.zero_grad()
    x = torch.from_numpy(fd["x"]).requires_grad_(True)
    loss = net(x, torch.from_numpy(fd["t"]))
    loss.backward()
    grads = {k: p.grad.numpy() for k, p in net.named_parameters()}
    grads["x"] = x.grad.numpy()
    return float(loss.detach()), grads


def assert_grads_match(got: dict, loss: float, grads: dict) -> None:
    np.testing.assert_allclose(got["loss"], loss, rtol=1e-5)
    for name, want in grads.items():
        err = np.max(np.abs(got[f"{name}_grad"] - want)) / max(np.max(np.abs(want)), 1e-12)
        assert err <= 1e-4, f"{name}: relative error {err:.2e}"


def ort_run(model: onnx.ModelProto, fd: dict) -> dict:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, fd)))


@pytest.mark.parametrize("name", list(MODELS))
def test_gradients_of_exported_cnns_match_autograd(tmp_path, name):
    torch.manual_seed(0)
    net = MODELS[name][0]()
    export(net, name, tmp_path / "net.onnx")
    g = gd.from_onnx(tmp_path / "net.onnx")
    assert g.by_name["x"].type.shape[0] == gd.Sym.var("N")
    params = [k for k, _ in net.named_parameters()]
    gg = passes.grad(g, "loss", params + ["x"])
    fd = feeds(name, 5, seed=2)  # another batch size than at export: N stays symbolic
    loss_value, want = torch_grads(net, fd)
    assert_grads_match(gd.run(gg, fd), loss_value, want)
    assert_grads_match(ort_run(gd.to_onnx(gg), fd), loss_value, want)


def test_max_pool_routes_ties_to_the_first_maximum():
    """Blank digit backgrounds tie in whole windows: the gradient goes to each window's first
    element, exactly as torch sends it (not split, not to the last)."""
    x = _digits(4, 8)
    r = np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32)
    b = gd.GraphBuilder("ties")
    xt = b.input("x", ["N", 1, 8, 8])
    y = gd.max_pool(xt, 3, 2, 1)
    gg = passes.grad(b.build({"loss": gd.reduce_sum(y * b.const(r))}), "loss", ["x"])
    tx = torch.from_numpy(x).requires_grad_(True)
    (F.max_pool2d(tx, 3, 2, 1) * torch.from_numpy(r)).sum().backward()
    cols = F.unfold(torch.from_numpy(x), 3, stride=2)  # [N, 9, windows] (no padding)
    assert ((cols == cols.max(1, keepdim=True).values).sum(1) > 1).any(), "no tied window"
    for engine in ("numpy", "ort"):
        np.testing.assert_allclose(gd.run(gg, {"x": x}, backend=engine)["x_grad"],
                                   tx.grad.numpy(), rtol=1e-6, atol=1e-6)  # sums reorder


def test_cli_grad_of_an_exported_lenet(tmp_path):
    """``graphdl grad`` on the LeNet export, then the written model in stock onnxruntime."""
    torch.manual_seed(3)
    net = LeNet()
    export(net, "lenet", tmp_path / "lenet.onnx")
    names = [k for k, _ in net.named_parameters()]
    r = subprocess.run([sys.executable, "-m", "graphdl", "grad", "lenet.onnx", "-o", "g.onnx",
                        "--wrt", ",".join(names + ["x"])],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    model = onnx.load(tmp_path / "g.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert [o.name for o in model.graph.output] == ["loss"] + [f"{k}_grad" for k in names] + \
        ["x_grad"]
    fd = feeds("lenet", 6, seed=4)
    loss_value, want = torch_grads(net, fd)
    assert_grads_match(ort_run(model, fd), loss_value, want)
