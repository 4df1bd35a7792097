"""AdamW, RMSprop, weight decay, global-norm clipping, gradient accumulation and per-parameter
learning rates against torch.optim (and torch.nn.utils.clip_grad_norm_), step by step."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl import optim
from graphdl.optim import UpdateOptions
from tests.test_optim import _batches, _forward

torch = pytest.importorskip("torch")


def _ours(opt, options=None, backend="numpy") -> tuple[list[dict], dict]:
    step = passes.training_step(_forward(), opt, options=options)
    state, hp, history = dict(step.initial), step.hyperparam_feeds(), []
    for batch in _batches():
        out = gd.run(step.graph, {**batch, **state, **hp}, backend=backend)
        state = step.carry(out)
        history.append(step.params(state))
    return history, step.params(step.initial)


def _torch(make_opt, init, clip=None, accumulate=1, groups=None) -> list[dict]:
    ps = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
    opt = make_opt([{"params": [p], **(groups or {}).get(k, {})} for k, p in ps.items()])
    history = []
    for i, batch in enumerate(_batches()):
        x, t = torch.tensor(batch["x"]), torch.tensor(batch["t"])
        h = torch.tanh(x @ ps["dense1.W"] + ps["dense1.b"])
        loss = torch.mean((h @ ps["dense2.W"] + ps["dense2.b"] - t) ** 2) / accumulate
        loss.backward()
        if (i + 1) % accumulate == 0:
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(list(ps.values()), clip)
            opt.step()
            opt.zero_grad()
        history.append({k: p.detach().numpy().copy() for k, p in ps.items()})
    return history


CASES = {
    "adamw": (lambda: optim.AdamW(lr=0.01, weight_decay=0.1), None,
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1), {}),
    "rmsprop": (lambda: optim.RMSprop(lr=0.01), None,
                lambda p: torch.optim.RMSprop(p, lr=0.01), {}),
    "rmsprop_momentum": (lambda: optim.RMSprop(lr=0.005, momentum=0.9), None,
                         lambda p: torch.optim.RMSprop(p, lr=0.005, momentum=0.9), {}),
    "sgd_decay": (lambda: optim.SGD(lr=0.1, momentum=0.5), UpdateOptions(weight_decay=0.05),
                  lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.05), {}),
    "adam_decay_clip": (lambda: optim.Adam(lr=0.02), UpdateOptions(weight_decay=0.01,
                                                                   clip_norm=0.05),
                        lambda p: torch.optim.Adam(p, lr=0.02, weight_decay=0.01),
                        {"clip": 0.05}),
    "adam_accumulate_3": (lambda: optim.Adam(lr=0.02), UpdateOptions(accumulate=3),
                          lambda p: torch.optim.Adam(p, lr=0.02), {"accumulate": 3}),
    "sgd_groups": (lambda: optim.SGD(lr=0.05),
                   UpdateOptions(lr_scale={"dense2.W": 10.0, "dense2.b": 10.0}),
                   lambda p: torch.optim.SGD(p, lr=0.05),
                   {"groups": {"dense2.W": {"lr": 0.5}, "dense2.b": {"lr": 0.5}}}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_updates_match_torch(name):
    ours_opt, options, torch_opt, kw = CASES[name]
    ours, init = _ours(ours_opt(), options)
    theirs = _torch(torch_opt, init, **kw)
    assert np.abs(ours[-1]["dense1.W"] - init["dense1.W"]).max() > 1e-3
    for i, (a, b) in enumerate(zip(ours, theirs)):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-9,
                                       err_msg=f"{name} step {i + 1} {k}")


def test_clipping_binds_and_runs_in_onnxruntime():
    """The clipped step in onnxruntime equals the interpreter's; the clip really scaled."""
    opt, options = lambda: optim.SGD(lr=0.1), UpdateOptions(clip_norm=0.01)
    ours, init = _ours(opt(), options)
    ort, _ = _ours(opt(), options, backend="ort")
    unclipped, _ = _ours(opt())
    np.testing.assert_allclose(ort[-1]["dense1.W"], ours[-1]["dense1.W"], rtol=1e-6)
    step = np.sqrt(sum(((ours[0][k] - init[k]) ** 2).sum() for k in init))
    assert step == pytest.approx(0.1 * 0.01, rel=1e-4)  # lr * clip_norm: the norm was capped
    assert not np.allclose(unclipped[0]["dense1.W"], ours[0]["dense1.W"])
