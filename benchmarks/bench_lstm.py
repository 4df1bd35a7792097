"""One LSTM training step (forward + backprop through time: loss and every gradient) on a
batch of 64 sequences, T=8 steps of 8 features, hidden size 64, a dense 64 -> 10 head and
softmax cross-entropy; in graphdl's interpreter (the gradient graph of the unrolled LSTM), in a
hand-written NumPy BPTT of the same model, and in PyTorch eager (CPU), one thread each,
interleaved in one run. graphdl runs the gradient graph as passes.grad builds it ("graphdl",
the target's subject), and after the default pass pipeline (passes.optimize: Gemm and
elementwise fusion, CSE, ...) for reference. Target: graphdl's interpreter <= 1.3x the
hand-written NumPy step, compared by the minimum (and the median) over the interleaved repeats.

    python benchmarks/bench_lstm.py [--repeats 200]
"""
from __future__ import annotations

import argparse
import os
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread for every engine (set before numpy loads)

import numpy as np  # noqa: E402

import graphdl as gd  # noqa: E402
import passes  # noqa: E402
from graphdl.engine.interpreter import Plan  # noqa: E402
from graphdl.nn import LSTM, Dense  # noqa: E402
from graphdl.training.minibatch import params_as_inputs  # noqa: E402

N, T, I, H, C = 64, 8, 8, 64, 10


def graphdl_step(optimize: bool) -> tuple[Plan, dict[str, np.ndarray]]:
    """The compiled gradient graph (through the default pass pipeline if ``optimize``) and
    the initial parameters by name."""
    b = gd.GraphBuilder("lstm_step")
    x, y = b.input("x", ["N", T, I]), b.input("y", ["N"], "int64")
    logits = Dense(H, C, seed=1)(LSTM(I, H, seed=0)(x))
    g, params = params_as_inputs(b.build({"loss": gd.softmax_cross_entropy(logits, y)}))
    gg = passes.grad(g, "loss", list(params))
    return Plan(passes.optimize(gg) if optimize else gg), params


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * a) + 0.5


def numpy_step(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Loss and gradients by hand: the LSTM (ONNX gate blocks i, o, f, c) forward, keeping
    every step's gates, then the chapter's backprop through time, step by step backwards."""
    w, r, bias = p["lstm1.W"][0], p["lstm1.R"][0], p["lstm1.B"][0]
    xw = x @ w.T + (bias[:4 * H] + bias[4 * H:])  # [N, T, 4H]
    h, c = np.zeros((len(x), H), x.dtype), np.zeros((len(x), H), x.dtype)
    cache = []
    for t in range(T):
        pre = xw[:, t] + h @ r.T
        sig = _sigmoid(pre[:, :3 * H])
        i, o, f = sig[:, :H], sig[:, H:2 * H], sig[:, 2 * H:]
        g = np.tanh(pre[:, 3 * H:])
        c_prev, h_prev = c, h
        c = f * c_prev + i * g
        tc = np.tanh(c)
        h = o * tc
        cache.append((h_prev, c_prev, i, o, f, g, tc))
    logits = h @ p["dense1.W"] + p["dense1.b"]
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    prob = e / e.sum(axis=1, keepdims=True)
    n = len(x)
    loss = -np.mean(np.log(prob[np.arange(n), y]))
    dlogits = prob
    dlogits[np.arange(n), y] -= 1
    dlogits /= n
    grads = {"dense1.W": h.T @ dlogits, "dense1.b": dlogits.sum(axis=0)}
    dh, dc = dlogits @ p["dense1.W"].T, np.zeros_like(c)
    dpre = np.empty((n, T, 4 * H), x.dtype)
    for t in reversed(range(T)):
        h_prev, c_prev, i, o, f, g, tc = cache[t]
        dc = dc + dh * o * (1 - tc * tc)
        d = dpre[:, t]
        d[:, :H] = dc * g * i * (1 - i)
        d[:, H:2 * H] = dh * tc * o * (1 - o)
        d[:, 2 * H:3 * H] = dc * c_prev * f * (1 - f)
        d[:, 3 * H:] = dc * i * (1 - g * g)
        dh, dc = d @ r, dc * f
    hs = np.stack([cache[t][0] for t in range(T)], axis=1)  # h(t-1) for each t
    dflat = dpre.reshape(-1, 4 * H)
    dr = dflat.T @ hs.reshape(-1, H)
    dw = dflat.T @ x.reshape(-1, I)
    db = dflat.sum(axis=0)
    grads.update({"lstm1.W": dw[None], "lstm1.R": dr[None],
                  "lstm1.B": np.concatenate([db, db])[None]})
    return {"loss": np.asarray(loss, x.dtype), **{f"{k}_grad": v for k, v in grads.items()}}


# torch's gate blocks are (i, f, g, o); ONNX's (i, o, f, c): torch block j is ONNX block
# _TO_TORCH[j], and ONNX block k is torch block _TO_ONNX[k].
_TO_TORCH, _TO_ONNX = [0, 2, 3, 1], [0, 3, 1, 2]


def _blocks(a: np.ndarray, order: list[int]) -> np.ndarray:
    """``a``'s 4 gate blocks along axis 0, reordered."""
    return np.concatenate([a[k * H:(k + 1) * H] for k in order])


def torch_step(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray):
    """A closure running torch's forward + backward of the same model with the same weights
    (``torch.nn.LSTM`` and ``Linear``) and returning (loss, gradients in torch's layout), or
    None without torch; :func:`torch_grads_as_graphdl` maps its result to graphdl's names."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    lstm, head = torch.nn.LSTM(I, H, batch_first=True), torch.nn.Linear(H, C)
    bias = params["lstm1.B"][0]
    pairs = ((lstm.weight_ih_l0, params["lstm1.W"][0]), (lstm.weight_hh_l0, params["lstm1.R"][0]),
             (lstm.bias_ih_l0, bias[:4 * H]), (lstm.bias_hh_l0, bias[4 * H:]))
    for t, a in pairs:
        t.data = torch.from_numpy(_blocks(a, _TO_TORCH).copy())
    head.weight.data = torch.from_numpy(params["dense1.W"].T.copy())
    head.bias.data = torch.from_numpy(params["dense1.b"].copy())
    weights = [*lstm.parameters(), *head.parameters()]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        out, _ = lstm(xt)
        loss = torch.nn.functional.cross_entropy(head(out[:, -1]), yt)
        return loss, torch.autograd.grad(loss, weights)
    return step


def torch_grads_as_graphdl(result) -> dict[str, np.ndarray]:
    """:func:`torch_step`'s (loss, gradients) by graphdl's names and layouts."""
    loss, (w_ih, w_hh, b_ih, b_hh, head_w, head_b) = result
    b = np.concatenate([_blocks(b_ih.numpy(), _TO_ONNX), _blocks(b_hh.numpy(), _TO_ONNX)])
    return {"loss": loss.detach().numpy(), "lstm1.W_grad": _blocks(w_ih.numpy(), _TO_ONNX)[None],
            "lstm1.R_grad": _blocks(w_hh.numpy(), _TO_ONNX)[None], "lstm1.B_grad": b[None],
            "dense1.W_grad": head_w.numpy().T, "dense1.b_grad": head_b.numpy()}


def batch(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((N, T, I)).astype(np.float32),
            "y": rng.integers(0, C, N).astype(np.int64)}


def check_same_gradients(plan: Plan, params: dict, feeds: dict) -> float:
    """The largest relative difference between graphdl's and the NumPy BPTT's results."""
    ours = plan({**feeds, **params})
    ref = numpy_step(params, feeds["x"], feeds["y"])
    return max(float(np.max(np.abs(ours[k] - v)) / max(np.max(np.abs(v)), 1e-12))
               for k, v in ref.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    plan, params = graphdl_step(optimize=False)
    optimized, _ = graphdl_step(optimize=True)
    feeds = batch()
    for name, p in (("grad graph", plan), ("optimized", optimized)):
        print(f"max relative difference graphdl ({name}) vs NumPy BPTT: "
              f"{check_same_gradients(p, params, feeds):.1e}")
    runs = {"graphdl": lambda: plan({**feeds, **params}, check=False),
            "graphdl_optimized": lambda: optimized({**feeds, **params}, check=False),
            "numpy": lambda: numpy_step(params, feeds["x"], feeds["y"])}
    torch_fn = torch_step(params, feeds["x"], feeds["y"])
    if torch_fn is not None:
        ref = numpy_step(params, feeds["x"], feeds["y"])
        ours = torch_grads_as_graphdl(torch_fn())
        diff = max(float(np.max(np.abs(ours[k] - v)) / max(np.max(np.abs(v)), 1e-12))
                   for k, v in ref.items())
        print(f"max relative difference torch (same weights) vs NumPy BPTT: {diff:.1e}")
        runs["torch"] = torch_fn
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():  # interleaved: each repeat times every engine once
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    best = {k: float(np.min(v)) * 1e3 for k, v in times.items()}
    for k in runs:
        print(f"{k}_ms_min={best[k]:.3f} {k}_ms_median={med[k]:.3f}")
    # The minimum over interleaved repeats estimates each engine's uncontended cost (on a
    # shared machine the median mostly measures the other processes); both ratios are shown.
    ratio = best["graphdl"] / best["numpy"]
    print(f"graphdl_over_numpy={ratio:.2f} (median {med['graphdl'] / med['numpy']:.2f}) "
          f"target=1.30 ok={ratio <= 1.3}")
    print(f"graphdl_optimized_over_numpy={best['graphdl_optimized'] / best['numpy']:.2f}")
    if "torch" in best:
        print(f"graphdl_over_torch={best['graphdl'] / best['torch']:.2f}")


if __name__ == "__main__":
    main()
