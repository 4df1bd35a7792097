"""Training steps per second: graphdl's exported training step (forward, backward and Adam in
one ONNX model) run by stock onnxruntime with IO binding, against PyTorch eager doing the same
step (CPU, 1 thread, batch 64), for the digits MLP and a small digits CNN. The issue's target is
at least 2x PyTorch eager's steps per second. Both are measured in the same run.

    python benchmarks/bench_train_step.py [--steps 300]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import graphdl as gd
import passes
from graphdl import optim
from graphdl.nn import MLP
from graphdl.step_runner import OrtRunner

BATCH, SIZES = 64, (64, 128, 64, 10)  # the MLP of examples/train_in_onnxruntime.py


def _data(n: int, image: bool) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    x = x.reshape(-1, 1, 8, 8) if image else x
    return x[:n], y[:n].astype(np.int64)


def mlp_step():
    b = gd.GraphBuilder("mlp")
    x, y = b.input("x", ["N", 64]), b.input("y", ["N"], "int64")
    fwd = b.build({"loss": gd.softmax_cross_entropy(MLP(SIZES, "relu", seed=0)(x), y)})
    return passes.training_step(fwd, optim.Adam(lr=1e-3))


def cnn_step():
    """conv 1->16 3x3 (pad 1), ReLU, 2x2 max-pool, dense 256 -> 10."""
    from graphdl.ops.conv import conv
    from graphdl.ops.pool import max_pool

    rng = np.random.default_rng(0)
    b = gd.GraphBuilder("cnn")
    x, y = b.input("x", ["N", 1, 8, 8]), b.input("y", ["N"], "int64")
    w = b.param("conv.W", (rng.standard_normal((16, 1, 3, 3)) * 0.3).astype(np.float32))
    cb = b.param("conv.b", np.zeros(16, np.float32))
    h = max_pool(gd.relu(conv(x, w, cb, pads=1)), 2)
    logits = MLP((256, 10), seed=1)(gd.flatten(h, 1))
    fwd = b.build({"loss": gd.softmax_cross_entropy(logits, y)})
    return passes.training_step(fwd, optim.Adam(lr=1e-3))


def torch_model(name: str, step):
    import torch

    p = {k: torch.tensor(v, requires_grad=True) for k, v in step.params(step.initial).items()}
    if name == "mlp":
        def forward(x):
            h = torch.relu(x @ p["dense1.W"] + p["dense1.b"])
            h = torch.relu(h @ p["dense2.W"] + p["dense2.b"])
            return h @ p["dense3.W"] + p["dense3.b"]
    else:
        def forward(x):
            h = torch.nn.functional.conv2d(x, p["conv.W"], p["conv.b"], padding=1)
            h = torch.nn.functional.max_pool2d(torch.relu(h), 2).flatten(1)
            return h @ p["dense1.W"] + p["dense1.b"]
    return forward, list(p.values())


def torch_steps_per_second(name: str, step, x, y, steps: int) -> float:
    import torch

    torch.set_num_threads(1)
    forward, params = torch_model(name, step)
    opt = torch.optim.Adam(params, lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def one(i: int) -> None:
        sl = slice((i * BATCH) % (len(x) - BATCH), None)
        loss = torch.nn.functional.cross_entropy(forward(xt[sl][:BATCH]), yt[sl][:BATCH])
        opt.zero_grad()
        loss.backward()
        opt.step()

    return _rate(one, steps)


def ort_steps_per_second(step, x, y, steps: int) -> float:
    runner, hp = OrtRunner(step, threads=1), step.hyperparam_feeds()

    def one(i: int) -> None:
        s = (i * BATCH) % (len(x) - BATCH)
        runner({"x": x[s:s + BATCH], "y": y[s:s + BATCH]}, hp)

    return _rate(one, steps)


def _rate(fn, steps: int) -> float:
    for i in range(10):  # warm-up
        fn(i)
    t0 = time.perf_counter()
    for i in range(steps):
        fn(i)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    for name, make in (("mlp", mlp_step), ("cnn", cnn_step)):
        step = make()
        x, y = _data(1024, image=name == "cnn")
        ours = ort_steps_per_second(step, x, y, args.steps)
        try:
            theirs = torch_steps_per_second(name, step, x, y, args.steps)
        except ImportError:
            print(f"model={name} ort_steps_per_s={ours:.0f} torch=not-installed")
            continue
        print(f"model={name} batch={BATCH} ort_steps_per_s={ours:.0f} "
              f"torch_eager_steps_per_s={theirs:.0f} ratio={ours / theirs:.2f} target=2.0")


if __name__ == "__main__":
    main()
