"""The interpreter against hand-written NumPy on the MLP training step (64-256-128-10, batch 64,
forward + backprop graph + SGD update as graph ops), one thread, contenders interleaved in the
same process; reports median same-run ratios (graphdl / NumPy) of thread CPU time and peak
memory (tracemalloc).

    python benchmarks/bench_interpreter.py [--rounds 30] [--json]

Targets: optimised plan <= 1.0x NumPy time, unoptimised <= 1.1x; peak memory <= 1.2x.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from typing import Callable  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import passes  # noqa: E402
from benchmarks.mlp_step import batch, init_params, mlp_train_step, numpy_mlp_step  # noqa: E402
from graphdl.interpreter import Plan  # noqa: E402


def contenders() -> tuple[dict[str, Callable[[], object]], dict[str, int]]:
    g = mlp_train_step()
    opt = passes.optimize(g)
    params = init_params()
    feeds = {**batch(64), **params}
    plain, fast = Plan(g), Plan(opt)
    fns = {
        "numpy": lambda: numpy_mlp_step(feeds["x"], feeds["y"], params),
        "graphdl_unoptimised": lambda: plain(feeds),
        "graphdl_optimised": lambda: fast(feeds),
    }
    return fns, {"nodes_before": len(g.nodes), "nodes_after": len(opt.nodes)}


def timed(fn: Callable[[], object], reps: int, clock=time.thread_time) -> float:
    """Seconds per call. CPU time of this thread by default: on a shared machine wall time
    also counts other processes' load (``--wall`` to use it anyway)."""
    t0 = clock()
    for _ in range(reps):
        fn()
    return (clock() - t0) / reps


def peak_bytes(fn: Callable[[], object]) -> int:
    fn()  # warm: caches, lazily built programs
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def run(rounds: int = 30, reps: int = 20, clock=time.thread_time) -> dict:
    fns, counts = contenders()
    for fn in fns.values():
        timed(fn, 5)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):  # interleaved: each round times every contender once
        for name, fn in fns.items():
            times[name].append(timed(fn, reps, clock))
    base = times["numpy"]
    out: dict = {"numpy_us": statistics.median(base) * 1e6, **counts}
    for name in fns:
        if name != "numpy":
            out[f"{name}_us"] = statistics.median(times[name]) * 1e6
            out[f"{name}_ratio"] = statistics.median(t / b for t, b in zip(times[name], base))
    ref = peak_bytes(fns["numpy"])
    out["numpy_peak_kib"] = ref / 1024
    for name in ("graphdl_unoptimised", "graphdl_optimised"):
        out[f"{name}_peak_ratio"] = peak_bytes(fns[name]) / ref
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--wall", action="store_true", help="time wall clock, not thread CPU time")
    args = ap.parse_args()
    res = run(args.rounds, args.reps, time.perf_counter if args.wall else time.thread_time)
    if args.json:
        print(json.dumps(res, indent=1))
        return
    for k, v in res.items():
        print(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}")


if __name__ == "__main__":
    main()
