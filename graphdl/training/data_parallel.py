"""Data-parallel training: every rank takes its slice of each global batch, the ranks average
their gradients in one all-reduce, and every rank applies the same update.

- Batches: ``batch_size`` is the global batch. Every rank draws the same shuffle from the same
  seed; rank r takes the r-th contiguous slice of each batch (:func:`shard`; with 3 ranks a
  batch of 64 splits 22/21/21). Each rank's outputs are weighted by its share of the batch
  before the sum, so for a loss that is a mean over the batch the averaged gradient is the
  single-process gradient of the global batch.
- One flat buffer per step holds every gradient, the loss and metrics, and the batch-norm
  running statistics' next values: one in-place all-reduce, no per-tensor messages.
- Start: the initial state is broadcast from rank 0 (or read by rank 0 from a checkpoint
  and broadcast), so all ranks start identical whatever their own initialisation did.
- Dropout: the keep-masks are drawn for the whole global batch from the shared generator (so
  from the seed) and each rank takes its rows (so from its rank): the run is reproducible
  and equals the single-process run.
- Batch norm: each rank normalises with its own slice's statistics (as PyTorch's DDP does
  without SyncBatchNorm); the running mean and variance are averaged over ranks. From the same
  parameters the running mean is the global batch's; the running variance and the gradients of
  a batch-norm model differ from one process's by the spread between slices.
- Files: rank 0 alone writes checkpoints, atomically (the format of
  :class:`graphdl.training.trainer.Trainer`, so either trainer resumes the other's).
- Failure: an exception on one rank prints ``error: rank R: ...`` and aborts the job; a rank
  that dies or hangs is named by the others after the communicator's timeout
  (graphdl.training.distributed).

With one process the step runs as one graph, as :class:`~graphdl.training.trainer.Trainer` runs it.
"""
from __future__ import annotations

import io
import os
import sys
import time
from typing import Callable, Mapping

import numpy as np

from .distributed import (Communicator, LocalCommunicator, RankFailure, broadcast_arrays,
                          broadcast_bytes, unflatten)
from ..core.errors import GraphError
from ..core.fileio import write_atomic
from .progress import Progress
from .split_runner import graph_runner
from .step_runner import make_runner
from .step_split import split_step
from .step import NEXT, TrainStep
from .trainer import checkpoint_bytes, read_checkpoint, restore_progress

EvalFn = Callable[[dict[str, np.ndarray]], Mapping[str, float]]


def shard(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows [lo, hi) of a batch of ``n`` that ``rank`` of ``size`` takes: contiguous slices,
    the first ``n % size`` ranks one row longer."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


class DataParallelTrainer:
    """Trains ``step`` over the ranks of ``comm`` (default: this process alone); the
    arguments are :class:`~graphdl.training.trainer.Trainer`'s, plus ``shuffle``. ``steps``
    counts the global steps; ``comm_seconds`` the time spent in the per-step all-reduce."""

    #: the checkpoint file's bytes from (meta, state), and back (a subclass may change both)
    encode = staticmethod(checkpoint_bytes)
    decode = staticmethod(read_checkpoint)

    def __init__(self, step: TrainStep, comm: Communicator | None = None, engine: str = "numpy",
                 provider: str = "cpu", batch_size: int = 32, seed: int = 0,
                 hyperparams: Mapping[str, float] = (), evaluate: EvalFn | None = None,
                 checkpoint: str | None = None, verbose: bool = True,
                 threads: int | None = None, shuffle: bool = True):
        self.step, self.comm = step, comm or LocalCommunicator()
        self.engine, self.provider, self.threads = engine, provider, threads
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self.evaluate, self.checkpoint = evaluate, checkpoint
        self.verbose = verbose and self.comm.rank == 0
        self.hp = step.hyperparam_feeds(**dict(hyperparams))
        self.rng = np.random.default_rng(seed)
        self.epoch, self.steps, self.history = 0, 0, []
        self.comm_seconds, self._announced = 0.0, False
        m = step.manifest
        self.reports = [m["loss"], *m["metrics"]]
        if self.comm.size == 1:
            self.runner = make_runner(step, engine, provider, threads=threads)
            return
        self.split = split_step(step)
        sp = self.split.split
        self._grad = graph_runner(self.split.grad_graph, engine, provider, threads)
        self._update = graph_runner(self.split.update_graph, engine, provider, threads)
        self._reduced = sp["grad_outputs"]  # loss, metrics, statistics' next values, gradients
        self._set_state(broadcast_arrays(self.comm, step.initial))

    # -- state -----------------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, np.ndarray]:
        return self.runner.state if self.comm.size == 1 else dict(self._state)

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        if self.comm.size == 1:
            self.runner = make_runner(self.step, self.engine, self.provider, state, self.threads)
            return
        self._state = {k: np.asarray(v) for k, v in state.items()}
        self._shapes = None  # of the reduced outputs, known after the first step

    # -- training --------------------------------------------------------------------------------
    def fit(self, data: Mapping[str, np.ndarray], epochs: int) -> list[dict[str, float]]:
        """Runs epochs ``self.epoch + 1 .. epochs`` over ``data`` (the same on every rank);
        returns the history. On a failure with several ranks, aborts the whole job."""
        try:
            names = [s["name"] for s in self.step.manifest["batch_inputs"]]
            missing = [k for k in names if k not in data]
            if missing:
                raise GraphError(f"data-parallel training: no data for the step's inputs "
                                 f"{missing}")
            n = len(data[names[0]])
            self._announce(n)
            while self.epoch < epochs:
                self.history.append(self._epoch(data, names, n, epochs))
                if self.checkpoint:
                    self.save(self.checkpoint)
            return self.history
        except Exception as e:
            if self.comm.size == 1:
                raise
            self._fail(e)
            raise

    def _fail(self, e: Exception) -> None:
        """One line naming the rank, then the job ends (the others would wait forever)."""
        text = " ".join(str(e).split()) or type(e).__name__
        line = f"error: {text}" if isinstance(e, RankFailure) else \
            f"error: rank {self.comm.rank}: {text}"
        print(line, file=sys.stderr, flush=True)
        self.comm.abort(2 if isinstance(e, GraphError) else 1)

    def _announce(self, n: int) -> None:
        """Which process is which rank (a launcher reports a dead rank by its process id)."""
        if self.comm.size == 1 or self._announced:
            return
        self._announced = True
        pids = np.zeros(self.comm.size, np.int64)
        pids[self.comm.rank] = os.getpid()
        self.comm.allreduce(pids)
        if self.verbose:
            rows = [shard(self.batch_size, r, self.comm.size) for r in range(self.comm.size)]
            print(f"data-parallel: {self.comm.size} ranks, global batch {self.batch_size} "
                  f"(rows per rank {'/'.join(str(b - a) for a, b in rows)}), {n} examples, "
                  f"pids {' '.join(f'{r}:{p}' for r, p in enumerate(pids))}", flush=True)

    def _batches(self, n: int) -> list[np.ndarray]:
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        return [order[s:s + self.batch_size] for s in range(0, n, self.batch_size)]

    def _epoch(self, data: Mapping[str, np.ndarray], names: list[str], n: int,
               epochs: int) -> dict[str, float]:
        self.epoch += 1
        start, sums, count = time.perf_counter(), {}, 0
        bar = Progress(self._batches(n), desc=f"epoch {self.epoch}") if self.verbose \
            else self._batches(n)
        for i, idx in enumerate(bar):
            if hasattr(self.comm, "what"):  # where we are, for a timeout's message
                self.comm.what = f"epoch {self.epoch} step {i + 1}"
            batch = {k: data[k][idx] for k in names}
            masks = self.step.draw_masks(self.rng, batch)  # the global batch's, as one process
            out = self._step(batch, masks)
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
            count += len(idx)
            self.steps += 1
            if self.verbose:
                bar.set(loss=out[self.reports[0]])
        row = {"epoch": float(self.epoch), **{k: v / count for k, v in sums.items()}}
        if self.evaluate is not None and self.comm.rank == 0:
            row.update(self.evaluate(self.state))
        row["seconds"] = time.perf_counter() - start
        if self.verbose:
            shown = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch")
            print(f"[{self.engine} x{self.comm.size}] epoch {self.epoch}/{epochs} {shown}",
                  flush=True)
        return row

    def _step(self, batch: dict[str, np.ndarray], masks: dict[str, np.ndarray]
              ) -> dict[str, float]:
        """One global step: this rank's slice, the all-reduce, the update."""
        if self.comm.size == 1:
            return self.runner({**batch, **masks}, self.hp)
        nb = len(next(iter(batch.values())))
        lo, hi = shard(nb, self.comm.rank, self.comm.size)
        flat = self._local_outputs(batch, masks, lo, hi, nb)
        t = time.perf_counter()
        self.comm.allreduce(flat)
        self.comm_seconds += time.perf_counter() - t
        avg = unflatten(flat, self._shapes)
        params = self.split.split["gradients"]
        nxt = self._update({**self._state, **{g: avg[g] for g in params.values()}, **self.hp})
        for out, inp in self.step.next_step.items():
            self._state[inp] = nxt[out] if out in nxt else avg[out].astype(
                self._state[inp].dtype)
        return {k: float(avg[k]) for k in self.reports}

    def _local_outputs(self, batch: dict[str, np.ndarray], masks: dict[str, np.ndarray],
                       lo: int, hi: int, nb: int) -> np.ndarray:
        """This rank's reduced outputs, weighted by its share of the batch, in one buffer."""
        if self._shapes is None:  # every rank learns the shapes on the first step
            self._shapes = self._output_shapes(batch, masks)
        dtype = self.step.dtype
        if hi == lo:  # fewer rows than ranks in this batch: nothing to add
            return np.zeros(sum(int(np.prod(s)) for s in self._shapes.values()), dtype)
        feeds = {k: v[lo:hi] for k, v in batch.items()}
        feeds.update({k: _rows(v, self._mask_axis(k), lo, hi) for k, v in masks.items()})
        out = self._grad({**feeds, **self._state})
        w = dtype.type((hi - lo) / nb)
        return np.concatenate([np.ravel(out[k]).astype(dtype, copy=False) * w
                               for k in self._reduced])

    def _output_shapes(self, batch, masks) -> dict[str, tuple[int, ...]]:
        """The reduced outputs' shapes (they do not depend on the batch size): from the state
        for gradients and statistics, scalars for the loss and metrics."""
        shapes = {}
        grads = {g: p for p, g in self.split.split["gradients"].items()}
        for k in self._reduced:
            src = grads.get(k) or (k[:-len(NEXT)] if k.endswith(NEXT) else None)
            shapes[k] = tuple(np.shape(self._state[src])) if src in self._state else ()
        return shapes

    def _mask_axis(self, name: str) -> int:
        """The axis of a dropout mask that runs along the batch (its batch symbol's axis)."""
        sym = self.step.manifest["batch_inputs"][0]["shape"][0]
        shape = self.step.manifest["masks"][name]["shape"]
        return shape.index(sym) if sym in shape else 0

    # -- checkpoints -------------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Rank 0 writes the checkpoint atomically; the other ranks write nothing."""
        if self.comm.rank != 0:
            return
        meta = {"epoch": self.epoch, "steps": self.steps, "rng": self.rng.bit_generator.state,
                "history": self.history, "manifest": self.step.manifest,
                "hyperparams": {k: float(v) for k, v in self.hp.items()},
                "ranks": self.comm.size}
        write_atomic(path, self.encode(meta, self.state))

    def load(self, path: str) -> None:
        """Rank 0 reads ``path`` and sends it to every rank; all restore the same state,
        epoch, random generator, history and hyperparameters."""
        try:
            data = None
            if self.comm.rank == 0:
                with open(path, "rb") as f:
                    data = f.read()
            meta, state = self.decode(io.BytesIO(broadcast_bytes(self.comm, data)))
        except Exception as e:
            if self.comm.size > 1:
                self._fail(e)
            raise
        restore_progress(self, meta, path)
        self._set_state(state)


def _rows(a: np.ndarray, axis: int, lo: int, hi: int) -> np.ndarray:
    index = [slice(None)] * a.ndim
    index[axis] = slice(lo, hi)
    return a[tuple(index)]
