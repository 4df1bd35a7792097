"""MLP gradients (every activation x every loss, with and without L1/L2 weight penalties) equal
PyTorch's autograd on the same weights and batch, in float32 (both engines) and float64."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl.nn import MLP

torch = pytest.importorskip("torch")
F = torch.nn.functional

SIZES = (5, 8, 6)  # input, hidden, hidden; the output size depends on the loss
N = 7
L1, L2 = 0.01, 0.005

TORCH_ACTS: dict[str, Callable] = {
    "relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.01), "elu": F.elu,
    "sigmoid": torch.sigmoid, "tanh": torch.tanh,
}


def _targets(loss: str, rng: np.random.Generator) -> np.ndarray:
    if loss == "mse":
        return rng.standard_normal((N, 3))
    if loss in ("bce", "bce_logits"):
        return rng.random((N, 3))
    labels = rng.integers(0, 4, size=N)
    return labels if loss == "softmax_ce" else np.eye(4)[labels]


# name -> (output size, output activation, graphdl loss, torch loss)
LOSSES = {
    "mse": (3, None, gd.mse_loss, F.mse_loss),
    "bce": (3, "sigmoid", gd.binary_cross_entropy, F.binary_cross_entropy),
    "bce_logits": (3, None, gd.binary_cross_entropy_with_logits,
                   F.binary_cross_entropy_with_logits),
    "softmax_ce": (4, None, gd.softmax_cross_entropy, F.cross_entropy),
    "softmax_ce_onehot": (4, None, gd.softmax_cross_entropy_onehot, F.cross_entropy),
}


def _feeds(loss: str, dtype) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = _targets(loss, rng)
    return {"x": rng.standard_normal((N, SIZES[0])).astype(dtype),
            "t": t.astype(np.int64 if t.dtype.kind == "i" else dtype)}


def _graphdl(act: str, loss: str, feeds: dict, penalty: bool, backends: list[str]):
    """Loss and gradients (params and x) in each backend, plus the initial weights."""
    n_out, out_act, loss_fn, _ = LOSSES[loss]
    b = gd.GraphBuilder("mlp")
    x = b.input("x", ["N", SIZES[0]], feeds["x"].dtype)
    t = b.input("t", ["N", *feeds["t"].shape[1:]], feeds["t"].dtype)
    net = MLP([*SIZES, n_out], act, out_activation=out_act, seed=0)
    total = loss_fn(net(x), t)
    if penalty:
        for name, w in net.parameters(b).items():
            if name.endswith(".W"):
                total = total + L1 * gd.reduce_sum(abs(w)) + L2 * gd.reduce_sum(w * w)
    g = b.build({"loss": total})
    params = {v.name: a for v, a in g.initializers.items()}
    gg = passes.grad(g, "loss", [*params, "x"])
    return {be: gd.run(gg, feeds, backend=be) for be in backends}, params


def _torch(act: str, loss: str, feeds: dict, params: dict, penalty: bool) -> dict:
    _, out_act, _, loss_fn = LOSSES[loss]
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x = torch.tensor(feeds["x"], requires_grad=True)
    h = x
    n_layers = len(params) // 2
    for i in range(1, n_layers + 1):
        h = h @ p[f"dense{i}.W"] + p[f"dense{i}.b"]
        if i < n_layers:
            h = TORCH_ACTS[act](h)
        elif out_act:
            h = TORCH_ACTS[out_act](h)
    total = loss_fn(h, torch.tensor(feeds["t"]))
    if penalty:
        for k, w in p.items():
            if k.endswith(".W"):
                total = total + L1 * w.abs().sum() + L2 * (w * w).sum()
    total.backward()
    out = {"loss": total.detach().numpy(), "x_grad": x.grad.numpy()}
    out.update({f"{k}_grad": v.grad.numpy() for k, v in p.items()})
    return out


def _rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-30))


def _check(act: str, loss: str, dtype, penalty: bool) -> None:
    feeds = _feeds(loss, dtype)
    backends = ["numpy", "ort"] if dtype == np.float32 else ["numpy"]
    results, params = _graphdl(act, loss, feeds, penalty, backends)
    ref = _torch(act, loss, feeds, params, penalty)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for backend, ours in results.items():
        assert set(ours) == set(ref)
        for name, want in ref.items():
            assert ours[name].dtype == dtype and ours[name].shape == want.shape, name
            err = _rel_err(ours[name], want)
            assert err <= tol, f"{backend} {name}: relative error {err:.2e} > {tol}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("act", list(TORCH_ACTS))
def test_mlp_gradients_match_torch(act: str, loss: str, dtype):
    _check(act, loss, dtype, penalty=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("loss", ["mse", "softmax_ce"])
@pytest.mark.parametrize("act", list(TORCH_ACTS))
def test_l1_l2_weight_penalties_match_torch(act: str, loss: str, dtype):
    _check(act, loss, dtype, penalty=True)
