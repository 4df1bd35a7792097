"""The digits CNN trained data-parallel over MPI ranks, checked against one process.

    mpiexec -n 2 python examples/data_parallel_digits.py [--epochs 8]   (the distributed
    python examples/data_parallel_digits.py                             extra's mpiexec; one
                                                                        process: ranks=1)

Every rank builds the same training step (examples/cnn_digits.py's CNN, SGD with momentum, run
in onnxruntime with one thread). Each global batch of 64 is cut into one contiguous slice per
rank; the ranks all-reduce their share-weighted gradients in one flat buffer and apply the same
update, so they stay identical. Rank 0 then trains the same model alone (the one-graph step,
same seed, same batches) and prints the largest parameter difference between the two runs:
float32 rounding, since the data-parallel mean is the single-process mean.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import graphdl as gd  # noqa: E402
import passes  # noqa: E402
from cnn_digits import SEED, load_data, net  # noqa: E402
from graphdl import optim  # noqa: E402
from graphdl.training.data_parallel import DataParallelTrainer  # noqa: E402
from graphdl.training.distributed import LocalCommunicator, world  # noqa: E402
from graphdl.training.minibatch import accuracy, classifier_graphs, params_as_inputs  # noqa: E402

EPOCHS, BATCH, LR, MOMENTUM, ENGINE = 8, 64, 0.05, 0.9, "ort"


def build() -> tuple:
    """The training step and the inference graph (parameters as inputs) of the CNN."""
    train_g, infer_g = classifier_graphs(net(SEED), ["N", 1, 8, 8], "cnn_digits")
    step = passes.training_step(train_g, optim.SGD(lr=LR, momentum=MOMENTUM))
    return step, params_as_inputs(infer_g)[0]


def train(step, comm, data, epochs: int, verbose: bool) -> DataParallelTrainer:
    x_tr, _, y_tr, _ = data
    t = DataParallelTrainer(step, comm, ENGINE, batch_size=BATCH, seed=SEED, verbose=verbose,
                            threads=1)
    t.fit({"x": x_tr, "y": y_tr}, epochs)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    epochs = ap.parse_args().epochs
    comm = world()
    step, infer = build()
    data = load_data(SEED)
    start = time.perf_counter()
    dp = train(step, comm, data, epochs, verbose=comm.rank == 0)
    seconds = time.perf_counter() - start
    if comm.rank != 0:
        return
    params = step.params(dp.state)
    acc = accuracy(infer, params, data[1], data[3], ENGINE)
    print("rank 0: training the same model in this one process for comparison", flush=True)
    single = step.params(train(step, LocalCommunicator(), data, epochs, verbose=False).state)
    diff = max(float(np.max(np.abs(params[k] - single[k]))) for k in params)
    print(f"ranks={comm.size} test_accuracy={acc:.4f} max_param_diff_vs_single={diff:.2e} "
          f"steps={dp.steps} train_seconds={seconds:.1f} "
          f"allreduce_ms_per_step={1e3 * dp.comm_seconds / max(dp.steps, 1):.3f}")


if __name__ == "__main__":
    main()
