"""``graphdl train DIR --data DATA.npz`` under ``mpiexec -n R``: trains the step that
``graphdl train-step`` wrote into DIR data-parallel (see CONTRACT.md); the command itself is
graphdl.tools.train_cli's, which hands over here when more than one rank runs.

Under an MPI launcher the command trains over all ranks (graphdl.training.data_parallel):
``--batch-size`` is the global batch, rank r takes the r-th contiguous slice of each batch,
and only rank 0 prints and writes ``DIR/state.npz``.

``DIR/state.npz`` is the single-process trainer's checkpoint (graphdl.training.trainer): every
carried value under its own name, and the progress (epoch, step count, random generator,
history, hyperparameters) that ``--resume`` reads to continue exactly, in one process or not.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from ..training.data_parallel import DataParallelTrainer
from ..training.trainer import checkpoint_bytes, read_checkpoint
from ..core.errors import GraphError

class CommandTrainer(DataParallelTrainer):
    """The data-parallel trainer writing CONTRACT.md's ``state.npz``."""

    encode = staticmethod(checkpoint_bytes)  # the single-process trainer's format
    decode = staticmethod(read_checkpoint)


def train_data_parallel(args: argparse.Namespace, comm: Any) -> None:
    """``graphdl train`` over the ranks of ``comm`` (graphdl.tools.train_cli calls it when an
    MPI launcher started more than one rank)."""
    from ..training.step import TrainStep

    if args.epochs < 1 or args.batch_size < 1:
        raise GraphError("--epochs and --batch-size must be at least 1")
    for ext in (".onnx", ".json", ".init.npz"):
        if not os.path.exists(os.path.join(args.dir, "train_step" + ext)):
            raise GraphError(f"{args.dir}: no train_step{ext} (write it with graphdl "
                             "train-step)")
    step = TrainStep.load(args.dir)
    data = _load_data(args.data, step)
    hp = {"lr": args.lr} if args.lr is not None else {}
    path = os.path.join(args.dir, "state.npz")
    t = CommandTrainer(step, comm, args.engine, args.provider, args.batch_size, args.seed, hp,
                       checkpoint=path, shuffle=not args.no_shuffle,
                       threads=args.threads or _threads_per_rank(comm.size))
    if args.resume:
        t.load(path)
    t.fit(data, args.epochs)
    if comm.rank == 0:
        last = t.history[-1] if t.history else {}
        print(f"final_loss={last.get(step.manifest['loss'], float('nan')):.6f} "
              f"epochs={t.epoch} steps={t.steps} ranks={comm.size}", flush=True)


def _threads_per_rank(size: int) -> int | None:
    """The machine's cores shared among the ranks on it (the launcher says how many), so
    ranks do not oversubscribe; None (onnxruntime's choice) in one process."""
    if size == 1:
        return None
    keys = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")
    local = next((int(os.environ[k]) for k in keys if os.environ.get(k, "").isdigit()), size)
    return max(1, (os.cpu_count() or 1) // local)


def _load_data(path: str, step) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    names = [s["name"] for s in step.manifest["batch_inputs"]]
    missing = [n for n in names if n not in data]
    if missing:
        raise GraphError(f"{path}: no array for the step's batch input(s) {missing}; it holds "
                         f"{sorted(data)}")
    lengths = {n: len(data[n]) for n in names}
    if len(set(lengths.values())) != 1:
        raise GraphError(f"{path}: batch inputs of different lengths {lengths}")
    specs = {s["name"]: np.dtype(s["dtype"]) for s in step.manifest["batch_inputs"]}
    return {n: data[n].astype(specs[n]) if data[n].dtype.kind == specs[n].kind == "f"
            else data[n] for n in names}
