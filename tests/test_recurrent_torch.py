"""PyTorch's nn.RNN / nn.LSTM / nn.GRU, exported to ONNX by the TorchScript exporter with the
loss inside the model, imported by graphdl and differentiated: every parameter's gradient and
the input's (and the initial states') equal torch autograd's, max relative error <= 1e-4 in
float32, in graphdl's interpreter and in onnxruntime.

The exporter stores the recurrent weights in ONNX's gate order; the test checks that they are
exactly graphdl.nn.onnx_weights_from_torch of torch's parameters (the documented conversion:
LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h with linear_before_reset=1) and converts torch's
gradients the same way to compare them.
"""
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
from graphdl.nn import onnx_weights_from_torch

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

I, H, T, CLASSES = 3, 5, 6, 4
RNN_OPS = ("RNN", "LSTM", "GRU")


class SeqNet(nn.Module):
    """A recurrent layer, then either a classifier on the last state (cross-entropy) or a
    squared loss on every step's output; optional initial state(s) as inputs."""

    def __init__(self, kind: str, all_steps: bool, bidirectional: bool = False):
        super().__init__()
        self.kind, self.all_steps = kind, all_steps
        self.rnn = getattr(nn, kind)(I, H, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(H * (2 if bidirectional else 1), CLASSES)

    def forward(self, x, target, *state):
        if self.kind == "LSTM" and state:
            state = (tuple(state),)
        out, _ = self.rnn(x, *state)
        if self.all_steps:
            return ((self.head(out) - target) ** 2).mean()
        return F.cross_entropy(self.head(out[:, -1]), target)


def make_feeds(net: SeqNet, n: int, init_state: bool, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    fd = {"x": rng.standard_normal((n, T, I)).astype(np.float32)}
    if net.all_steps:
        fd["target"] = rng.standard_normal((n, T, CLASSES)).astype(np.float32)
    else:
        fd["target"] = rng.integers(0, CLASSES, n).astype(np.int64)
    dirs = 2 if net.rnn.bidirectional else 1
    for name in (("h0", "c0") if net.kind == "LSTM" else ("h0",)) if init_state else ():
        fd[name] = rng.standard_normal((dirs, n, H)).astype(np.float32)
    return fd


def export(net: SeqNet, fd: dict, path) -> None:
    """With constant folding for the last-step models (the exporter then stores the recurrent
    weights reordered, as new initializers); without it for the all-step ones, whose head
    would otherwise be stored transposed: there the reordering is graph code (Slice, Concat)
    that graphdl differentiates through, back to torch's own parameters."""
    names = list(fd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, tuple(torch.from_numpy(v) for v in fd.values()), str(path),
                          opset_version=17, dynamo=False, input_names=names,
                          do_constant_folding=not net.all_steps,
                          output_names=["loss"],
                          dynamic_axes={k: {1 if k in ("h0", "c0") else 0: "N"} for k in names})


def torch_grads(net: SeqNet, fd: dict) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and the gradient of every parameter and float input, by torch autograd."""
    net.zero_grad()
    inputs = {k: torch.tensor(v, requires_grad=v.dtype == np.float32) for k, v in fd.items()}
    loss = net(*inputs.values())
    loss.backward()
    grads = {k: p.grad.numpy() for k, p in net.named_parameters()}
    grads.update({k: t.grad.numpy() for k, t in inputs.items() if t.requires_grad})
    return float(loss.detach()), grads


def onnx_names(model: onnx.ModelProto, net: SeqNet) -> tuple[str, ...]:
    """The names of the recurrent node's W, R, B inputs (both directions stacked in each)."""
    node = next(n for n in model.graph.node if n.op_type in RNN_OPS)
    assert node.op_type == net.kind
    return tuple(node.input[1:4])


def expected(net: SeqNet, grads: dict, model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """torch's gradients keyed by graphdl's names: the recurrent ones converted to ONNX's
    W, R, B (both directions stacked), the head's and the inputs' as they are."""
    if net.all_steps:
        return grads  # initializers are torch's parameters, reordered in the graph
    kind = net.kind.lower()
    w_name, r_name, b_name = onnx_names(model, net)
    parts = [onnx_weights_from_torch(kind, *(grads[f"rnn.{p}_l0{sfx}"] for p in (
        "weight_ih", "weight_hh", "bias_ih", "bias_hh"))) for sfx in _suffixes(net)]
    out = {k: v for k, v in grads.items() if not k.startswith("rnn.")}
    for name, k in ((w_name, 0), (r_name, 1), (b_name, 2)):
        out[name] = np.concatenate([p[k] for p in parts], axis=0)
    return out


def _suffixes(net: SeqNet) -> list[str]:
    return ["", "_reverse"] if net.rnn.bidirectional else [""]


def check_initializers_are_the_conversion(net: SeqNet, model: onnx.ModelProto) -> None:
    if net.all_steps:
        return  # not folded: the initializers are torch's parameters
    params = {k: v.detach().numpy() for k, v in net.named_parameters()}
    want = expected(net, params, model)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for name in onnx_names(model, net):
        np.testing.assert_array_equal(inits[name], want[name], err_msg=name)


def assert_close(got: dict, loss: float, want: dict, where: str) -> None:
    np.testing.assert_allclose(got["loss"], loss, rtol=1e-5)
    for name, ref in want.items():
        ours = got[f"{name}_grad"]
        assert ours.shape == ref.shape, f"{where} {name}: {ours.shape} != {ref.shape}"
        err = np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-12)
        assert err <= 1e-4, f"{where} {name}: relative error {err:.2e}"


def ort_run(model: onnx.ModelProto, fd: dict) -> dict:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, fd)))


CASES = [  # kind, all-step outputs, initial state, bidirectional
    ("RNN", False, False, False), ("RNN", True, True, False),
    ("LSTM", False, False, False), ("LSTM", True, True, False),
    ("GRU", False, False, False), ("GRU", True, True, False),
    ("LSTM", True, False, True), ("GRU", False, True, True),
]


@pytest.mark.parametrize("kind,all_steps,init_state,bidir", CASES,
                         ids=[f"{k}-{'all' if a else 'last'}-{'h0' if i else 'zero'}"
                              f"{'-bidir' if b else ''}" for k, a, i, b in CASES])
def test_gradients_match_autograd(tmp_path, kind, all_steps, init_state, bidir):
    torch.manual_seed(0)
    net = SeqNet(kind, all_steps, bidir)
    export(net, make_feeds(net, 2, init_state, seed=1), tmp_path / "m.onnx")
    model = onnx.load(tmp_path / "m.onnx")
    assert sum(n.op_type == kind for n in model.graph.node) == 1
    check_initializers_are_the_conversion(net, model)
    g = gd.from_onnx(model)
    fd = make_feeds(net, 5, init_state, seed=2)  # another batch size: N stays symbolic
    loss, grads = torch_grads(net, fd)
    want = expected(net, grads, model)
    gg = passes.grad(g, "loss", list(want))
    assert_close(gd.run(gg, fd), loss, want, "numpy")
    assert_close(ort_run(gd.to_onnx(gg), fd), loss, want, "ort")


def test_cli_grad_of_an_exported_lstm(tmp_path):
    """``graphdl grad`` on the file: by default it differentiates every initializer."""
    torch.manual_seed(1)
    net = SeqNet("LSTM", all_steps=False)
    export(net, make_feeds(net, 2, False, seed=1), tmp_path / "m.onnx")
    r = subprocess.run([sys.executable, "-m", "graphdl", "grad", "m.onnx", "-o", "g.onnx"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    model = onnx.load(tmp_path / "m.onnx")
    fd = make_feeds(net, 4, False, seed=3)
    loss, grads = torch_grads(net, fd)
    want = {k: v for k, v in expected(net, grads, model).items() if k != "x"}
    got = ort_run(onnx.load(tmp_path / "g.onnx"), {"x": fd["x"], "target": fd["target"]})
    assert_close(got, loss, want, "cli")
