"""The issue's LSTM classifier as a realistic training-step benchmark: T=32 steps of 32 features,
hidden 128, the last state -> linear 10, softmax cross-entropy, Adam (lr 1e-3), batch 64.

:func:`lstm_case` gives one zero-argument step callable per contender, all from the same initial
weights on the same batch, after checking that their first losses agree:

- ``ort``: graphdl's exported training step in onnxruntime (``OrtRunner``, IO binding);
- ``interpreter``: the same step after ``passes.optimize`` in graphdl's NumPy interpreter;
- ``torch``: PyTorch eager (``nn.LSTM``, ``nn.Linear``, ``torch.optim.Adam``), when installed.

    python benchmarks/realistic_lstm.py [--rounds 15]

prints each contender's step time and its ratio to PyTorch eager at 1 and 2 threads (same run,
interleaved rounds; median, min and max of the per-round ratios), and each exported step's time at
2 threads over its time at 1 thread, round by round.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import graphdl as gd  # noqa: E402
import passes  # noqa: E402
from benchmarks.harness import interleaved, same_outputs  # noqa: E402
from graphdl import optim  # noqa: E402
from graphdl.nn import LSTM, Dense  # noqa: E402
from graphdl.nn.recurrent import TORCH_TO_ONNX_GATES  # noqa: E402
from graphdl.training.step_runner import NumpyRunner, OrtRunner  # noqa: E402
from graphdl.training.step import TrainStep  # noqa: E402

T, I, H, C, N = 32, 32, 128, 10, 64
LR = 1e-3


def lstm_step() -> TrainStep:
    """The classifier's training step (forward, BPTT, Adam) as graphdl builds it."""
    b = gd.GraphBuilder("lstm_classifier")
    x, y = b.input("x", ["N", T, I]), b.input("y", ["N"], "int64")
    logits = Dense(H, C, seed=1)(LSTM(I, H, seed=0)(x))
    fwd = b.build({"loss": gd.softmax_cross_entropy(logits, y)})
    return passes.training_step(fwd, optim.Adam(lr=LR))


def lstm_batch(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((N, T, I)).astype(np.float32),
            "y": rng.integers(0, C, N).astype(np.int64)}


def _blas_threads(threads: int):
    """A context limiting NumPy's BLAS to ``threads`` (threadpoolctl, a scikit-learn
    dependency), or a no-op without it."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def torch_weights(params: dict[str, np.ndarray], hidden: int = H) -> dict[str, np.ndarray]:
    """graphdl's ONNX-layout LSTM and Dense weights in torch's layout (gate blocks i, f, g, o)."""
    onnx_of_torch = TORCH_TO_ONNX_GATES["lstm"]  # ONNX position k holds torch block order[k]
    torch_of_onnx = [onnx_of_torch.index(j) for j in range(4)]

    def blocks(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[k * hidden:(k + 1) * hidden] for k in torch_of_onnx])

    bias = params["lstm1.B"][0]
    return {"weight_ih_l0": blocks(params["lstm1.W"][0]),
            "weight_hh_l0": blocks(params["lstm1.R"][0]),
            "bias_ih_l0": blocks(bias[:4 * hidden]), "bias_hh_l0": blocks(bias[4 * hidden:]),
            "weight": params["dense1.W"].T, "bias": params["dense1.b"]}


def torch_stepper(params: dict[str, np.ndarray], batch: dict[str, np.ndarray],
                  threads: int) -> Callable[[], float] | None:
    """One PyTorch eager step per call (returns the loss), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    lstm, head = torch.nn.LSTM(I, H, batch_first=True), torch.nn.Linear(H, C)
    weights = torch_weights(params)
    with torch.no_grad():
        for mod in (lstm, head):
            for name, p in mod.named_parameters():
                p.copy_(torch.from_numpy(np.ascontiguousarray(weights[name])))
    opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=LR)
    xb, yb = torch.from_numpy(batch["x"]), torch.from_numpy(batch["y"])

    def step() -> float:
        if torch.get_num_threads() != threads:  # a global: other cases may have changed it
            torch.set_num_threads(threads)
        out, _ = lstm(xb)
        loss = torch.nn.functional.cross_entropy(head(out[:, -1]), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def lstm_case(threads: int = 1, check: bool = True, floor: bool = False
              ) -> dict[str, Any]:
    """Contender name -> a zero-argument training step returning the loss (see the module
    docstring); with ``check``, the first two steps' losses agree across contenders first
    (benchmarks.harness.OutputsDiffer otherwise) and timing continues from there. With
    ``floor``, also ``floor``: the exported step's products' time (a product_floor.Fixed)."""
    step, batch = lstm_step(), lstm_batch()
    hp = step.hyperparam_feeds()
    ort_runner = OrtRunner(step, threads=threads)
    fast = TrainStep(passes.optimize(step.graph), step.manifest, step.initial)
    numpy_runner = NumpyRunner(fast)
    loss = step.manifest["loss"]

    def interpreter() -> float:
        with _blas_threads(threads):
            return numpy_runner(batch, hp)[loss]

    fns: dict[str, Callable[[], float]] = {"ort": lambda: ort_runner(batch, hp)[loss],
                                           "interpreter": interpreter}
    if floor:
        from benchmarks.product_floor import step_floor

        fns["floor"] = step_floor(step, batch)
    torch_fn = torch_stepper(step.params(step.initial), batch, threads)
    if torch_fn is not None:
        fns["torch"] = torch_fn
    if check:
        losses = {k: [fn() for _ in range(2)] for k, fn in fns.items() if callable(fn)}
        ref = "torch" if "torch" in fns else "ort"
        for k, got in losses.items():
            same_outputs(f"LSTM step: {k} vs {ref}", {"loss": got}, {"loss": losses[ref]})
    return fns


def _ratios(times: dict[str, list[float]], num: str, den: str) -> list[float]:
    return [a / b for a, b in zip(times[num], times[den])]


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    one = lstm_case(1)
    times = interleaved(one, args.rounds)  # thread CPU time: everything on this thread
    print("1 thread, thread CPU time:")
    _report({f"{k}@1": v for k, v in times.items()})
    fns = {f"{k}@1": fn for k, fn in one.items()}
    fns.update({f"{k}@2": fn for k, fn in lstm_case(2).items()})
    # wall time: at 2 threads onnxruntime's and torch's work runs on other threads too
    print("1 and 2 threads, wall time:")
    _report(interleaved(fns, args.rounds, clock=time.perf_counter))


def _report(times: dict[str, list[float]]) -> None:
    import statistics

    for name, ts in times.items():
        print(f"{name}: median {statistics.median(ts) * 1e3:.2f} ms", end="")
        base = f"torch@{name.split('@')[1]}"
        if base in times and name != base:
            r = _ratios(times, name, base)
            print(f"  / {base}: median {statistics.median(r):.2f} min {min(r):.2f} "
                  f"max {max(r):.2f}", end="")
        print()
    for k in ("ort", "torch"):
        if f"{k}@2" in times:
            r = _ratios(times, f"{k}@2", f"{k}@1")
            print(f"{k} 2 threads / 1 thread per round: max {max(r):.2f} median "
                  f"{statistics.median(r):.2f} (rounds: {' '.join(f'{v:.2f}' for v in r)})")


if __name__ == "__main__":
    main()
