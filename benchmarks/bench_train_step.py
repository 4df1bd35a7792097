"""Training steps per second: graphdl's exported training step (forward, backward and Adam in
one ONNX model) run by stock onnxruntime with IO binding, against PyTorch eager doing the same
step (CPU, 1 thread, batch 64), for the digits MLP and a small digits CNN. The issue's target is
at least 2x PyTorch eager's steps per second. The two are interleaved in rounds by the shared
timer of ``benchmarks/harness.py`` (this thread's CPU time: both run on the calling thread at
one thread, so load from other processes does not tilt the ratio); the median round ratio is
reported.

    python benchmarks/bench_train_step.py [--rounds 15]
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys

import numpy as np

import graphdl as gd
import passes
from graphdl import optim
from graphdl.nn import MLP
from graphdl.training.step_runner import OrtRunner

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.harness import interleaved, median_ratio  # noqa: E402

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


def _batches(x: np.ndarray, y: np.ndarray):
    """The batches of (x, y) in turn, wrapping around: batch i starts at i * BATCH."""
    for i in itertools.count():
        s = (i * BATCH) % (len(x) - BATCH)
        yield x[s:s + BATCH], y[s:s + BATCH]


def torch_stepper(name: str, step, x, y):
    """One PyTorch eager training step per call, on the next batch."""
    import torch

    torch.set_num_threads(1)
    forward, params = torch_model(name, step)
    opt = torch.optim.Adam(params, lr=1e-3)
    batches = _batches(torch.from_numpy(x), torch.from_numpy(y))

    def one() -> None:
        xb, yb = next(batches)
        loss = torch.nn.functional.cross_entropy(forward(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return one


def ort_stepper(step, x, y):
    """One step of the exported model in onnxruntime (IO binding) per call, on the next
    batch."""
    runner, hp = OrtRunner(step, threads=1), step.hyperparam_feeds()
    batches = _batches(x, y)

    def one() -> None:
        xb, yb = next(batches)
        runner({"x": xb, "y": yb}, hp)

    return one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    for name, make in (("mlp", mlp_step), ("cnn", cnn_step)):
        step = make()
        x, y = _data(1024, image=name == "cnn")
        fns = {"ort": ort_stepper(step, x, y)}
        try:
            fns["torch"] = torch_stepper(name, step, x, y)
        except ImportError:
            pass
        t = interleaved(fns, args.rounds)
        ours = 1 / statistics.median(t["ort"])
        if "torch" not in t:
            print(f"model={name} ort_steps_per_s={ours:.0f} torch=not-installed")
            continue
        theirs = 1 / statistics.median(t["torch"])
        ratio = median_ratio(t, "torch", "ort")
        print(f"model={name} batch={BATCH} ort_steps_per_s={ours:.0f} "
              f"torch_eager_steps_per_s={theirs:.0f} ratio={ratio:.2f} target=2.0")


if __name__ == "__main__":
    main()
