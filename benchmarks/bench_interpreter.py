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
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from typing import Callable  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import passes  # noqa: E402
from benchmarks.harness import interleaved, median_ratio, print_results  # noqa: E402
from benchmarks.mlp_step import batch, init_params, mlp_train_step, numpy_mlp_step  # noqa: E402
from graphdl.engine.interpreter import Plan  # noqa: E402


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


def peak_bytes(fn: Callable[[], object]) -> int:
    fn()  # warm: caches, lazily built programs
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def run(rounds: int = 30, clock=time.thread_time) -> dict:
    """Interleaved rounds (thread CPU time by default: on a shared machine wall time also
    counts other processes' load), then peak memory."""
    fns, counts = contenders()
    times = interleaved(fns, rounds, clock=clock)
    out: dict = {"numpy_us": statistics.median(times["numpy"]) * 1e6, **counts}
    for name in fns:
        if name != "numpy":
            out[f"{name}_us"] = statistics.median(times[name]) * 1e6
            out[f"{name}_ratio"] = median_ratio(times, name, "numpy")
    ref = peak_bytes(fns["numpy"])
    out["numpy_peak_kib"] = ref / 1024
    for name in ("graphdl_unoptimised", "graphdl_optimised"):
        out[f"{name}_peak_ratio"] = peak_bytes(fns[name]) / ref
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--wall", action="store_true", help="time wall clock, not thread CPU time")
    args = ap.parse_args()
    print_results(run(args.rounds, time.perf_counter if args.wall else time.thread_time),
                  args.json)


if __name__ == "__main__":
    main()
