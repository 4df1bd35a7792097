"""The MLP training step the pass and interpreter benchmarks (and tests) share: forward, the
backprop graph, and the SGD update ``W - lr * W_grad`` built as graph ops; and the same step
hand-written in NumPy, as the reference."""
from __future__ import annotations

import numpy as np

import graphdl as gd
import passes

SIZES = (64, 256, 128, 10)


def init_params(sizes=SIZES, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = {}
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"W{i}"] = (rng.standard_normal((m, n)) * np.sqrt(2.0 / m)).astype(np.float32)
        params[f"b{i}"] = np.zeros(n, np.float32)
    return params


def mlp_forward(sizes=SIZES) -> gd.Graph:
    """x [N, in], y [N] labels and the parameters W{i}, b{i} as inputs -> the mean softmax
    cross-entropy ``loss`` of the ReLU MLP."""
    b = gd.GraphBuilder("mlp_step")
    x, y = b.input("x", ["N", sizes[0]]), b.input("y", ["N"], "int64")
    h = x
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        h = h @ b.input(f"W{i}", [m, n]) + b.input(f"b{i}", [n])
        if i < len(sizes) - 2:
            h = gd.relu(h)
    return b.build({"loss": gd.softmax_cross_entropy(h, y)})


def mlp_train_step(sizes=SIZES, lr: float = 0.1) -> gd.Graph:
    """Inputs x [N, in], y [N] labels and every parameter; outputs loss and ``NAME.new`` for
    each parameter (after one SGD step)."""
    fwd = mlp_forward(sizes)
    names = [v.name for v in fwd.inputs[2:]]
    g = passes.grad(fwd, "loss", names)
    gb = gd.GraphBuilder.from_graph(g)
    outs = {"loss": gb.tensor(g.value("loss"))}
    for name in names:
        w, dw = gb.tensor(g.value(name)), gb.tensor(g.value(f"{name}_grad"))
        outs[f"{name}.new"] = w - lr * dw
    return gb.build(outs)


def numpy_mlp_step(x: np.ndarray, y: np.ndarray, params: dict, lr: float = 0.1) -> dict:
    """The same step written by hand in NumPy (what a careful user would write)."""
    n_layers = len(params) // 2
    acts, h = [x], x
    for i in range(n_layers):
        h = h @ params[f"W{i}"]
        h += params[f"b{i}"]
        if i < n_layers - 1:
            np.maximum(h, 0, out=h)
        acts.append(h)
    z = acts[-1]
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = np.mean(np.log(s[:, 0]) - z[rows, y])
    g = e / s
    g[rows, y] -= 1
    g /= len(y)
    out = {"loss": np.asarray(loss, np.float32)}
    lr32 = np.float32(lr)
    for i in reversed(range(n_layers)):
        a = acts[i]
        out[f"W{i}.new"] = params[f"W{i}"] - lr32 * (a.T @ g)
        out[f"b{i}.new"] = params[f"b{i}"] - lr32 * g.sum(axis=0)
        if i > 0:
            g = g @ params[f"W{i}"].T
            g *= a > 0
    return out


def batch(n: int = 64, sizes=SIZES, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((n, sizes[0])).astype(np.float32),
            "y": rng.integers(0, sizes[-1], n).astype(np.int64)}


def torch_mlp_step(params: dict[str, np.ndarray], lr: float = 0.1):
    """The same step in PyTorch eager (autograd, then ``W - lr * W.grad``) on its own copies of
    the parameters: a closure ``step(x, y)`` returning the outputs by graphdl's names; None
    without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    n_layers = len(p) // 2

    def step(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        h = torch.from_numpy(x)
        for i in range(n_layers):
            h = h @ p[f"W{i}"] + p[f"b{i}"]
            if i < n_layers - 1:
                h = torch.relu(h)
        loss = torch.nn.functional.cross_entropy(h, torch.from_numpy(y))
        grads = torch.autograd.grad(loss, list(p.values()))
        out = {"loss": loss.detach().numpy()}
        with torch.no_grad():
            for (name, w), dw in zip(p.items(), grads):
                out[f"{name}.new"] = (w - lr * dw).numpy()
        return out
    return step
