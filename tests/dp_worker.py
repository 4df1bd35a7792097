"""The program tests/test_data_parallel.py starts under ``mpiexec``, and the models it shares.

    mpiexec -n R python tests/dp_worker.py OUT.npz [--only MODEL/ENGINE/DTYPE] [--epochs E]
        [--checkpoint PATH [--resume]] [--fail kill|hang|raise --fail-rank K --fail-at S]
        [--timeout T] [--verbose] [--data DIGITS.npz]

Trains every configuration (digits MLP with dropout, digits CNN; numpy and ort engines;
float32 and float64) data-parallel for one epoch without shuffling, and a batch-norm MLP for
one step; rank 0 writes each final
state into OUT.npz under ``MODEL/ENGINE/DTYPE/NAME``. The failure options make one rank die
(SIGKILL), stop (SIGSTOP: a hung rank) or raise at its S-th all-reduce (the first is the
trainer's start-up one, then one per step).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import graphdl as gd  # noqa: E402
import passes  # noqa: E402
from graphdl import nn, optim  # noqa: E402
from graphdl.training.data_parallel import DataParallelTrainer  # noqa: E402
from graphdl.training.distributed import world  # noqa: E402

ROWS, BATCH, SEED = 300, 64, 3
CONFIGS = [f"{m}/{e}/{d}" for m in ("mlp", "cnn") for e in ("numpy", "ort")
           for d in ("float32", "float64")]
#: a batch-norm MLP trained for one step (rows = one batch): per-rank normalisation, so only the
#: averaged running mean is the single process's
BN_CONFIG = "bn/numpy/float64"


def digits(dtype: str, rows: int = ROWS, path: str | None = None) -> dict[str, np.ndarray]:
    """The first ``rows`` digits scaled to [0, 1], from scikit-learn or from ``path`` (an npz
    with ``x`` and ``y`` that the test writes once: importing scikit-learn in every rank
    would cost seconds)."""
    if path:
        with np.load(path) as z:
            x, y = z["x"], z["y"]
    else:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
    return {"x": (x[:rows] / 16.0).astype(dtype), "y": y[:rows].astype(np.int64)}


def step(model: str, dtype: str):
    """The training step: MLP (with dropout) under SGD with momentum in float32 and Adam in
    float64; the CNN likewise."""
    b = gd.GraphBuilder(model)
    x, y = b.input("x", ["N", 64], dtype), b.input("y", ["N"], "int64")
    if model == "mlp":
        net = nn.Sequential(nn.Dense(64, 32, "relu", seed=1), nn.Dropout(0.25),
                            nn.Dense(32, 10, seed=2))
        logits = net(x)
    elif model == "bn":
        net = nn.Sequential(nn.Dense(64, 32, seed=1), nn.BatchNorm(32), nn.Dense(32, 10, seed=2))
        logits = net(x)
    else:
        net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, activation="relu", seed=1),
                            nn.MaxPool2d(2), nn.Flatten(), nn.Dense(4 * 4 * 4, 10, seed=2))
        logits = net(gd.reshape(x, [-1, 1, 8, 8]))
    fwd = b.build({"loss": gd.softmax_cross_entropy(logits, y)})
    if dtype == "float64":
        return passes.training_step(fwd, optim.Adam(lr=0.01))
    return passes.training_step(fwd, optim.SGD(lr=0.1, momentum=0.9))


def trainer(config: str, comm=None, **kw) -> DataParallelTrainer:
    model, engine, dtype = config.split("/")
    kw = {"verbose": False, **kw}
    return DataParallelTrainer(step(model, dtype), comm, engine, batch_size=BATCH, seed=SEED,
                               shuffle=False, threads=1, **kw)


class Sabotage:
    """Wraps a communicator: at its ``at``-th all-reduce on rank ``rank`` it does ``how``."""

    def __init__(self, comm, rank: int, at: int, how: str):
        self.comm, self.target, self.at, self.how, self.calls = comm, rank, at, how, 0
        self.rank, self.size = comm.rank, comm.size

    def allreduce(self, buf):
        self.calls += 1
        if self.rank == self.target and self.calls == self.at:
            if self.how == "raise":
                raise RuntimeError("injected failure")
            os.kill(os.getpid(), signal.SIGKILL if self.how == "kill" else signal.SIGSTOP)
        self.comm.allreduce(buf)

    def __getattr__(self, name):
        return getattr(self.comm, name)

    @property
    def what(self) -> str:
        return getattr(self.comm, "what", "")

    @what.setter
    def what(self, text: str) -> None:
        self.comm.what = text


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--only", action="append")
    p.add_argument("--fail", choices=["kill", "hang", "raise"])
    p.add_argument("--fail-rank", type=int, default=1)
    p.add_argument("--fail-at", type=int, default=8)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--checkpoint")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--data", help="an npz of the digits (default: scikit-learn's)")
    args = p.parse_args()
    comm = world(timeout=args.timeout)
    if args.fail:
        comm = Sabotage(comm, args.fail_rank, args.fail_at, args.fail)
    results = {}
    for config in args.only or CONFIGS + [BN_CONFIG]:
        t = trainer(config, comm, checkpoint=args.checkpoint, verbose=args.verbose)
        if args.resume:
            t.load(args.checkpoint)
        rows = BATCH if config == BN_CONFIG else ROWS
        t.fit(digits(config.split("/")[2], rows, path=args.data), args.epochs)
        results.update({f"{config}/{k}": v for k, v in t.state.items()})
    if comm.rank == 0:
        np.savez(args.out, **results)


if __name__ == "__main__":
    main()
