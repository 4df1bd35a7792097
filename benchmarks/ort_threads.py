"""The thread setting behind graphdl.engine.ort_options' defaults: each exported training step in
onnxruntime (OrtRunner) at 1 thread, at 2 threads as graphdl runs it (idle workers spin within a
run and stop at its end), and at 2 threads with blocking workers (``spinning=False``),
interleaved round by round in wall time (at 2 threads the work runs on other threads too), each
after a pause in which the previous variant's workers go to sleep; each 2-thread variant's time
over the 1-thread time in the same round.

    python benchmarks/ort_threads.py [--rounds 15] [--only mlp,lstm,resnet]

Models: the issue's MLP (784-512-512-10, ReLU, cross-entropy, Adam, batch 128), its LSTM
classifier (benchmarks/realistic_lstm.py) and its CIFAR ResNet (benchmarks/realistic_models.py).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import graphdl as gd  # noqa: E402
import passes  # noqa: E402
from benchmarks.harness import interleaved  # noqa: E402
from benchmarks import realistic_models as rm  # noqa: E402
from benchmarks.realistic_lstm import lstm_batch, lstm_step  # noqa: E402
from graphdl import optim  # noqa: E402
from graphdl.nn import MLP  # noqa: E402
from graphdl.engine.ort_options import OrtOptions  # noqa: E402
from graphdl.training.step_runner import OrtRunner  # noqa: E402

VARIANTS = {"1 thread": OrtOptions(threads=1), "2 threads": OrtOptions(threads=2),
            "2 threads blocking": OrtOptions(threads=2, spinning=False)}


def mlp_case():
    b = gd.GraphBuilder("mlp")
    x, y = b.input("x", ["N", 784]), b.input("y", ["N"], "int64")
    logits = MLP((784, 512, 512, 10), "relu", seed=0)(x)
    step = passes.training_step(b.build({"loss": gd.softmax_cross_entropy(logits, y)}),
                                optim.Adam(lr=1e-3))
    rng = np.random.default_rng(0)
    return step, {"x": rng.standard_normal((128, 784)).astype(np.float32),
                  "y": rng.integers(0, 10, 128).astype(np.int64)}


def resnet_case():
    rng = np.random.default_rng(1)
    return rm.resnet_step(), {
        "x": rng.standard_normal((rm.RESNET_BATCH, 3, rm.RESNET_SIDE,
                                  rm.RESNET_SIDE)).astype(np.float32),
        "y": rng.integers(0, 10, rm.RESNET_BATCH).astype(np.int64)}


CASES = {"mlp": mlp_case, "lstm": lambda: (lstm_step(), lstm_batch()), "resnet": resnet_case}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--only", default=",".join(CASES))
    args = ap.parse_args()
    for name in args.only.split(","):
        step, batch = CASES[name]()
        hp = step.hyperparam_feeds()
        fns = {}
        for label, opts in VARIANTS.items():
            runner = OrtRunner(step, options=opts)
            fns[label] = (lambda r: lambda: r(batch, hp))(runner)
        times = interleaved(fns, args.rounds, chunk_s=0.05, clock=time.perf_counter,
                            settle_s=0.15)
        base = times["1 thread"]
        print(f"{name}: 1 thread median {statistics.median(base) * 1e3:.2f} ms")
        for label in list(VARIANTS)[1:]:
            r = [a / b for a, b in zip(times[label], base)]
            print(f"  {label} / 1 thread: median {statistics.median(r):.2f} max {max(r):.2f} "
                  f"rounds slower than 1 thread: {sum(x > 1 for x in r)}/{len(r)}")


if __name__ == "__main__":
    main()
