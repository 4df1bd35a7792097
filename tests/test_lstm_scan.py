"""lstm_scan (graphdl/ops/lstm_scan.py), the LSTM recurrence with its backprop-through-time rule:
the gradients of every input of the lstm op built on it (both directions, initial states, all
three outputs weighted) against PyTorch's float64 autograd to 1e-10, in the interpreter and in
onnxruntime (the exported rule), and the exported training step against torch's Adam."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl.nn.recurrent import onnx_weights_from_torch
from graphdl.ops.recurrent import lstm

torch = pytest.importorskip("torch")

T, N, I, H = 5, 3, 4, 6


def _torch_lstm(bidir: bool) -> "torch.nn.LSTM":
    torch.manual_seed(0)
    return torch.nn.LSTM(I, H, bidirectional=bidir).double()


def _onnx_params(net, grads: dict | None = None) -> tuple[np.ndarray, ...]:
    """W, R, B [D, ...] of ``net``'s weights (or of their gradients in ``grads``)."""
    parts = []
    for sfx in ["", "_reverse"] if net.bidirectional else [""]:
        names = [f"{p}_l0{sfx}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        arrays = [(grads[n] if grads else getattr(net, n)).detach().numpy() for n in names]
        parts.append(onnx_weights_from_torch("lstm", *arrays))
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


@pytest.mark.parametrize("bidir", [False, True], ids=["forward", "bidirectional"])
def test_lstm_gradients_match_torch_float64(bidir):
    net, d = _torch_lstm(bidir), 2 if bidir else 1
    rng = np.random.default_rng(1)
    x, h0, c0 = rng.standard_normal((T, N, I)), rng.standard_normal((d, N, H)), \
        rng.standard_normal((d, N, H))
    ry, rh, rc = (rng.standard_normal(s) for s in ((T, d, N, H), (d, N, H), (d, N, H)))
    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    y, (hn, cn) = net(xt, (h0t, c0t))
    loss = (y.reshape(T, N, d, H).transpose(1, 2) * torch.from_numpy(ry)).sum() \
        + (hn * torch.from_numpy(rh)).sum() + (cn * torch.from_numpy(rc)).sum()
    loss.backward()
    want_w, want_r, want_b = _onnx_params(net, {k: p.grad for k, p in net.named_parameters()})
    want = {"x": xt.grad.numpy(), "h0": h0t.grad.numpy(), "c0": c0t.grad.numpy(),
            "W": want_w, "R": want_r, "B": want_b}

    b = gd.GraphBuilder("lstm64")
    w, r, bias = _onnx_params(net)
    ins = {"x": x, "W": w, "R": r, "B": bias, "h0": h0, "c0": c0}
    t = {k: b.input(k, list(a.shape), "float64") for k, a in ins.items()}
    outs = lstm(t["x"], t["W"], t["R"], t["B"], t["h0"], t["c0"],
                direction="bidirectional" if bidir else "forward")
    total = sum(gd.reduce_sum(o * b.const(c)) for o, c in zip(outs, (ry, rh, rc)))
    gg = passes.grad(b.build({"loss": total}), "loss", list(ins))
    assert any(n.op == "lstm_scan" for n in gg.nodes)
    for backend in ("numpy", "ort"):
        got = gd.run(gg, ins, backend=backend)
        np.testing.assert_allclose(got["loss"], loss.item(), rtol=1e-12)
        for name, ref in want.items():
            np.testing.assert_allclose(got[f"{name}_grad"], ref, rtol=1e-10, atol=1e-10,
                                       err_msg=f"{backend} d{name}")


def test_exported_training_step_matches_torch_adam():
    """The issue's classifier, small: last state -> linear -> cross-entropy, Adam; three steps
    of the exported step in onnxruntime against torch (float32, the losses and weights)."""
    from benchmarks.realistic_lstm import torch_weights
    from graphdl import optim
    from graphdl.nn import LSTM, Dense
    from graphdl.training.step_runner import OrtRunner

    b = gd.GraphBuilder("clf")
    x, y = b.input("x", ["N", T, I]), b.input("y", ["N"], "int64")
    logits = Dense(H, 3, seed=1)(LSTM(I, H, seed=0)(x))
    step = passes.training_step(b.build({"loss": gd.softmax_cross_entropy(logits, y)}),
                                optim.Adam(lr=0.05))
    runner, hp = OrtRunner(step, threads=1), step.hyperparam_feeds()
    net, head = torch.nn.LSTM(I, H, batch_first=True), torch.nn.Linear(H, 3)
    weights = torch_weights(step.params(step.initial), hidden=H)
    with torch.no_grad():
        for mod in (net, head):
            for name, p in mod.named_parameters():
                p.copy_(torch.from_numpy(np.ascontiguousarray(weights[name])))
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=0.05)
    rng = np.random.default_rng(3)
    for _ in range(3):
        xb = rng.standard_normal((8, T, I)).astype(np.float32)
        yb = rng.integers(0, 3, 8)
        ours = runner({"x": xb, "y": yb}, hp)["loss"]
        out, _ = net(torch.from_numpy(xb))
        loss = torch.nn.functional.cross_entropy(head(out[:, -1]), torch.from_numpy(yb))
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert abs(ours - loss.item()) <= 1e-5 * max(1.0, abs(loss.item()))
    final = torch_weights(step.params(runner.state), hidden=H)
    np.testing.assert_allclose(final["weight_hh_l0"], net.weight_hh_l0.detach().numpy(),
                               rtol=1e-4, atol=1e-5)
