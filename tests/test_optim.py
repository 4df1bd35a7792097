"""Each optimiser's training step against torch.optim, step by step, on the same MLP and data;
the same steps in onnxruntime; optimiser state naming and hyperparameters as inputs."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl import optim
from graphdl.nn import MLP

torch = pytest.importorskip("torch")

SIZES = (5, 8, 3)
STEPS = 20


def _forward(dtype="float64") -> gd.Graph:
    b = gd.GraphBuilder("mlp")
    x, t = b.input("x", ["N", SIZES[0]], dtype), b.input("t", ["N", SIZES[-1]], dtype)
    return b.build({"loss": gd.mse_loss(MLP(SIZES, "tanh", seed=3)(x), t)})


def _batches(dtype=np.float64) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"x": rng.standard_normal((6, SIZES[0])).astype(dtype),
             "t": rng.standard_normal((6, SIZES[-1])).astype(dtype)} for _ in range(STEPS)]


def _ours(opt: optim.Optimizer, backend: str = "numpy", dtype="float64") -> list[dict]:
    step = passes.training_step(_forward(dtype), opt)
    state, hp, history = dict(step.initial), step.hyperparam_feeds(), []
    for batch in _batches(np.dtype(dtype)):
        out = gd.run(step.graph, {**batch, **state, **hp}, backend=backend)
        state = step.carry(out)
        history.append(step.params(state))
    return history


def _torch(make_opt, init: dict[str, np.ndarray]) -> list[dict]:
    ps = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
    opt = make_opt(list(ps.values()))
    history = []
    for batch in _batches():
        x, t = torch.tensor(batch["x"]), torch.tensor(batch["t"])
        h = torch.tanh(x @ ps["dense1.W"] + ps["dense1.b"])
        loss = torch.mean((h @ ps["dense2.W"] + ps["dense2.b"] - t) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({k: p.detach().numpy().copy() for k, p in ps.items()})
    return history


CASES = {
    "sgd": (lambda: optim.SGD(lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "momentum": (lambda: optim.SGD(lr=0.05, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "adagrad": (lambda: optim.Adagrad(lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)),
    "adadelta": (lambda: optim.Adadelta(lr=1.0, rho=0.9),
                 lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.9)),
    "adam": (lambda: optim.Adam(lr=0.01, beta1=0.8, beta2=0.99),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99))),
}


@pytest.mark.parametrize("name", list(CASES))
def test_updates_match_torch_optim_for_20_steps(name):
    ours_opt, torch_opt = CASES[name]
    step = passes.training_step(_forward(), ours_opt())
    ours = _ours(ours_opt())
    theirs = _torch(torch_opt, step.params(step.initial))
    moved = np.abs(ours[-1]["dense1.W"] - step.initial["dense1.W"]).max()
    assert moved > 1e-3, f"{name} barely moved the weights ({moved}); the test would be vacuous"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-8,
                                       err_msg=f"{name} step {i + 1} {k}")


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_onnxruntime_runs_the_same_steps(name):
    np_hist = _ours(CASES[name][0]())
    ort_hist = _ours(CASES[name][0](), backend="ort")
    for a, b in zip(np_hist, ort_hist):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-9, atol=1e-12)


def test_state_and_hyperparameters_are_named_inputs():
    step = passes.training_step(_forward(), optim.Adam())
    ins = [v.name for v in step.graph.inputs]
    assert ins[:2] == ["x", "t"]
    assert {"lr", "beta1", "beta2", "eps", "optim.step", "dense1.W.exp_avg",
            "dense2.b.exp_avg_sq"} <= set(ins)
    assert step.next_step["optim.step.next"] == "optim.step"
    assert step.next_step["dense1.W.next"] == "dense1.W"
    assert set(step.next_step.values()) == set(step.initial)


def test_learning_rate_is_a_feed_not_a_constant():
    """lr = 0 leaves the parameters unchanged; doubling lr doubles an SGD step."""
    step = passes.training_step(_forward(), optim.SGD(lr=0.1))
    feeds = {**_batches()[0], **step.initial}
    w0 = step.initial["dense1.W"]
    frozen = gd.run(step.graph, {**feeds, **step.hyperparam_feeds(lr=0.0)})
    np.testing.assert_array_equal(frozen["dense1.W.next"], w0)
    d1 = gd.run(step.graph, {**feeds, **step.hyperparam_feeds(lr=0.1)})["dense1.W.next"] - w0
    d2 = gd.run(step.graph, {**feeds, **step.hyperparam_feeds(lr=0.2)})["dense1.W.next"] - w0
    np.testing.assert_allclose(d2, 2 * d1, rtol=1e-12)


def test_unknown_hyperparameter_is_refused():
    step = passes.training_step(_forward(), optim.Adam())
    with pytest.raises(gd.GraphError, match="beta3"):
        step.hyperparam_feeds(beta3=0.5)
