"""The CIFAR-style ResNet of issue 14 (benchmarks/realistic_models.py, shrunk: 2/4 channels,
6x6 images, one basic block per stage, a strided 1x1-conv + batch-norm shortcut): graphdl's
gradients of every parameter, in float64, in the interpreter and in onnxruntime, agree with
PyTorch float64 autograd (F.conv2d / F.batch_norm in training mode) to 1e-10; and one float32
training step (SGD momentum) in onnxruntime gives torch's loss, updated parameters and
running statistics. The model is built from one layer list by each side independently."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import graphdl as gd
import passes
from benchmarks import realistic_models as rm

torch = pytest.importorskip("torch")

SMALL = {"channels": (2, 4), "side": 6, "blocks": 1}


def _batch(dtype: str, n: int = 5):
    rng = np.random.default_rng(4)
    return (rng.standard_normal((n, 3, SMALL["side"], SMALL["side"])).astype(dtype),
            rng.integers(0, 10, n).astype(np.int64))


def _torch_grads(params: dict, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    forward, t = rm.torch_resnet(rm.resnet_layout(SMALL["channels"], SMALL["blocks"]), params)
    loss = torch.nn.functional.cross_entropy(forward(torch.from_numpy(x)), torch.from_numpy(y))
    names = [k for k, v in t.items() if v.requires_grad]
    grads = torch.autograd.grad(loss, [t[k] for k in names])
    return {"loss": loss.item(), **{f"{k}_grad": g.numpy() for k, g in zip(names, grads)}}


@pytest.mark.parametrize("backend", ["numpy", "ort"])
def test_float64_gradients_match_torch(backend):
    fwd = rm.resnet_forward(**SMALL, dtype="float64")
    params = {v.name: np.asarray(a) for v, a in fwd.initializers.items()}
    names = [k for k in params if not k.endswith(("running_mean", "running_var"))]
    g = passes.grad(fwd, "loss", names)
    x, y = _batch("float64")
    want = _torch_grads(params, x, y)
    got = gd.run(g, {"x": x, "y": y}, backend=backend)
    assert abs(float(got["loss"]) - want["loss"]) <= 1e-10 * abs(want["loss"])
    for k in names:
        ref = want[f"{k}_grad"]
        err = np.abs(got[f"{k}_grad"] - ref).max() / np.abs(ref).max()
        assert err <= 1e-10, (k, err)


def test_float32_training_step_in_onnxruntime_matches_torch():
    from graphdl.training.step_runner import OrtRunner

    step = rm.resnet_step(**SMALL)
    model = step.to_onnx()
    onnx.checker.check_model(model, full_check=True)
    assert {d.domain for d in model.opset_import} <= {"", "ai.onnx"}
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}
    runner = OrtRunner(step, threads=1)
    layout = rm.resnet_layout(SMALL["channels"], SMALL["blocks"])
    forward, t = rm.torch_resnet(layout, step.initial)
    opt = torch.optim.SGD([v for v in t.values() if v.requires_grad], lr=0.1, momentum=0.9)
    x, y = _batch("float32", 8)
    for _ in range(2):
        ours = runner({"x": x, "y": y}, step.hyperparam_feeds())[step.manifest["loss"]]
        loss = torch.nn.functional.cross_entropy(forward(torch.from_numpy(x)),
                                                 torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert abs(ours - loss.item()) <= 1e-5 * abs(loss.item())
    state = runner.state
    for k, v in t.items():
        np.testing.assert_allclose(state[k], v.detach().numpy(), rtol=1e-4, atol=1e-5)
