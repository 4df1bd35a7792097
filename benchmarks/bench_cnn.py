"""The CNN training step of examples/cnn_digits.py (batch 64, 8x8 digits: conv 1->16 3x3 pad 1,
ReLU, maxpool 2, conv 16->32, ReLU, maxpool 2, flatten, dense 10, softmax cross-entropy):
forward + gradient of every parameter. Measured interleaved in one run:

- graphdl: the gradient graph from passes.grad in graphdl's NumPy interpreter;
- NumPy by hand: a careful im2col implementation (windows cached from the forward pass for the
  weight gradient, col2im by one strided add per kernel offset, first-max pooling routes);
- PyTorch eager (CPU, 1 thread), when torch is installed.

Every engine runs on one thread (NumPy's BLAS too), so the ratios compare the work done, not
how a shared machine's cores happen to be loaded.

Target: graphdl <= 1.2x the hand-written NumPy step. The gradients of the three are checked
against each other before timing.

    python benchmarks/bench_cnn.py [--repeats 15] [--steps 20]
"""
from __future__ import annotations

import argparse
import os
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread for every engine (set before numpy loads)

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import graphdl as gd  # noqa: E402
import passes  # noqa: E402
from graphdl.nn import Conv2d, Dense, Flatten, MaxPool2d, Sequential  # noqa: E402
from graphdl.training.minibatch import params_as_inputs  # noqa: E402

BATCH = 64


def graphdl_step() -> tuple[gd.Graph, dict[str, np.ndarray]]:
    """The gradient graph (inputs x, y and the parameters) and the initial parameters."""
    net = Sequential(Conv2d(1, 16, 3, padding=1, activation="relu", seed=1), MaxPool2d(2),
                     Conv2d(16, 32, 3, padding=1, activation="relu", seed=2), MaxPool2d(2),
                     Flatten(), Dense(128, 10, seed=3))
    b = gd.GraphBuilder("cnn_step")
    x, y = b.input("x", ["N", 1, 8, 8]), b.input("y", ["N"], "int64")
    g, params = params_as_inputs(b.build({"loss": gd.softmax_cross_entropy(net(x), y)}))
    return passes.grad(g, "loss", list(params)), params


# -- the hand-written NumPy step ---------------------------------------------------------------


def _cols(x: np.ndarray) -> np.ndarray:
    """im2col for a 3x3 kernel, pad 1, stride 1: [N*H*W, C*9]."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))  # [N, C, H, W, 3, 3]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * 9)


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, _, h, wd = x.shape
    cols = _cols(x)
    y = cols @ w.reshape(w.shape[0], -1).T + b
    return y.reshape(n, h, wd, -1).transpose(0, 3, 1, 2), cols


def _conv_back(gy: np.ndarray, cols: np.ndarray, w: np.ndarray, x_shape: tuple,
               need_dx: bool) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    n, c, h, wd = x_shape
    g2 = gy.transpose(0, 2, 3, 1).reshape(n * h * wd, -1)  # [N*H*W, O]
    dw = (g2.T @ cols).reshape(w.shape)
    db = g2.sum(axis=0)
    if not need_dx:
        return None, dw, db
    dcols = (g2 @ w.reshape(w.shape[0], -1)).reshape(n, h, wd, c, 3, 3)
    dxp = np.zeros((n, h + 2, wd + 2, c), gy.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, i:i + h, j:j + wd] += dcols[:, :, :, :, i, j]
    return dxp[:, 1:-1, 1:-1].transpose(0, 3, 1, 2), dw, db


def _pool(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 max pool, stride 2, and the offset (0..3) of each window's first maximum: one
    vectorised pass per window offset."""
    quads = [x[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]
    y, arg = quads[0].copy(), np.zeros(quads[0].shape, np.int8)
    for k, q in enumerate(quads[1:], 1):
        arg = np.where(q > y, np.int8(k), arg)
        np.maximum(y, q, out=y)
    return y, arg


def _pool_back(gy: np.ndarray, arg: np.ndarray, x_shape: tuple) -> np.ndarray:
    dx = np.empty(x_shape, gy.dtype)
    zero = np.zeros((), gy.dtype)
    for k, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        dx[:, :, i::2, j::2] = np.where(arg == k, gy, zero)
    return dx


def numpy_step(x: np.ndarray, y: np.ndarray, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Loss and gradients of the same network, written by hand."""
    w1, b1, w2, b2 = p["conv2d1.W"], p["conv2d1.b"], p["conv2d2.W"], p["conv2d2.b"]
    z1, cols1 = _conv(x, w1, b1)
    a1 = np.maximum(z1, 0)
    h1, arg1 = _pool(a1)
    z2, cols2 = _conv(h1, w2, b2)
    a2 = np.maximum(z2, 0)
    h2, arg2 = _pool(a2)
    flat = h2.reshape(len(x), -1)
    logits = flat @ p["dense1.W"] + p["dense1.b"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(x)
    loss = -logp[np.arange(n), y].mean()
    g = np.exp(logp)
    g[np.arange(n), y] -= 1
    g /= n
    out = {"loss": loss, "dense1.W_grad": flat.T @ g, "dense1.b_grad": g.sum(axis=0)}
    gh2 = (g @ p["dense1.W"].T).reshape(h2.shape)
    gz2 = _pool_back(gh2, arg2, a2.shape) * (z2 > 0)
    gh1, out["conv2d2.W_grad"], out["conv2d2.b_grad"] = _conv_back(gz2, cols2, w2, h1.shape,
                                                                   True)
    gz1 = _pool_back(gh1, arg1, a1.shape) * (z1 > 0)
    _, out["conv2d1.W_grad"], out["conv2d1.b_grad"] = _conv_back(gz1, cols1, w1, x.shape, False)
    return out


# -- PyTorch -----------------------------------------------------------------------------------


def torch_step(params: dict[str, np.ndarray]):
    """A closure running the step in PyTorch eager on its own copies of the parameters."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    F = torch.nn.functional
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}

    def step(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        for t in p.values():
            t.grad = None
        h = F.max_pool2d(F.relu(F.conv2d(torch.from_numpy(x), p["conv2d1.W"], p["conv2d1.b"],
                                         padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2d2.W"], p["conv2d2.b"], padding=1)), 2)
        logits = h.flatten(1) @ p["dense1.W"] + p["dense1.b"]
        loss = F.cross_entropy(logits, torch.from_numpy(y))
        loss.backward()
        out = {f"{k}_grad": t.grad.numpy() for k, t in p.items()}
        out["loss"] = loss.detach().numpy()
        return out
    return step


def digits_batch() -> tuple[np.ndarray, np.ndarray]:
    """The first ``BATCH`` digits as [N, 1, 8, 8] images in [0, 1] and their labels."""
    xs, ys = load_digits(return_X_y=True)
    x = (xs[:BATCH] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return x, ys[:BATCH].astype(np.int64)


def _check(name: str, got: dict, want: dict) -> None:
    for k, v in want.items():
        err = np.max(np.abs(got[k] - v)) / (np.max(np.abs(v)) + 1e-12)
        if err > 1e-4:
            raise SystemExit(f"{name}: {k} differs from graphdl's by {err:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    x, y = digits_batch()
    gg, params = graphdl_step()
    feeds = {"x": x, "y": y, **params}
    runners = {"graphdl": lambda: gd.run(gg, feeds), "numpy": lambda: numpy_step(x, y, params)}
    t_step = torch_step(params)
    if t_step is not None:
        runners["torch"] = lambda: t_step(x, y)
    ours = runners["graphdl"]()
    for name, fn in runners.items():
        _check(name, fn(), ours)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(args.repeats):
        for name, fn in runners.items():  # interleaved, so load changes hit all alike
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            times[name].append((time.perf_counter() - t0) / args.steps)
    med = {k: float(np.median(v)) for k, v in times.items()}
    for name, t in med.items():
        print(f"{name:8s} {t * 1e3:7.3f} ms/step")
    ratio = med["graphdl"] / med["numpy"]
    line = f"impl=graphdl_vs_numpy ratio={ratio:.2f} target<=1.2 ok={ratio <= 1.2}"
    print(line)
    if "torch" in med:
        print(f"impl=graphdl_vs_torch ratio={med['graphdl'] / med['torch']:.2f}")
        print(f"impl=numpy_vs_torch ratio={med['numpy'] / med['torch']:.2f}")


if __name__ == "__main__":
    main()
