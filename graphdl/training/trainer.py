"""A small trainer: epochs of shuffled minibatches through a training step in either engine,
per-epoch metrics, a progress bar (graphdl.training.progress: silent off a terminal), and
checkpoints that resume exactly.

A checkpoint is one ``.npz`` file holding the carried state (parameters, optimiser state,
running statistics) under their own names, and under ``META`` the epoch, the step count, the
random generator's state (shuffling and dropout masks), the history and the step's manifest.
It is written atomically (temp file in the same folder, fsync, rename), so a crash mid-save
leaves the previous checkpoint intact; a trainer loaded from it continues exactly as if it had
never stopped.
"""
from __future__ import annotations

import io
import json
import time
from typing import Any, Callable, Mapping

import numpy as np

from ..core.errors import GraphError
from ..core.fileio import write_atomic
from .progress import Progress
from .schedules import Schedule
from .step_runner import make_runner
from .step import TrainStep
from .train_data import batches, check_scalar_reports, data_length

META = "graphdl.trainer.meta"

EvalFn = Callable[[dict[str, np.ndarray]], Mapping[str, float]]


class Trainer:
    """Trains ``step`` on arrays by input name; ``evaluate(params_and_state)`` may add metrics
    (e.g. test accuracy) after each epoch; ``schedule(step_index)`` scales ``lr`` per step.
    ``ort_options`` (engine "ort"): an OrtOptions or an onnxruntime SessionOptions
    (graphdl/engine/ort_options.py). ``on_step(reports)`` sees every step's loss and metrics
    (per-step curves); :meth:`train_batch` takes one step outside :meth:`fit`."""

    def __init__(self, step: TrainStep, engine: str = "numpy", provider: str = "cpu",
                 batch_size: int = 32, seed: int = 0, hyperparams: Mapping[str, float] = (),
                 evaluate: EvalFn | None = None, checkpoint: str | None = None,
                 verbose: bool = True, threads: int | None = None, shuffle: bool = True,
                 schedule: Schedule | None = None, ort_options=None,
                 on_step: Callable[[dict[str, float]], None] | None = None):
        check_scalar_reports(step)
        self.step, self.engine, self.provider = step, engine, provider
        self.batch_size, self.evaluate, self.checkpoint = int(batch_size), evaluate, checkpoint
        self.verbose, self.threads, self.ort_options = verbose, threads, ort_options
        self.shuffle, self.schedule, self.steps = shuffle, schedule, 0
        self.on_step = on_step
        self.hp = step.hyperparam_feeds(**dict(hyperparams))
        self.rng = np.random.default_rng(seed)
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.runner = make_runner(step, engine, provider, threads=threads, options=ort_options)

    @property
    def state(self) -> dict[str, np.ndarray]:
        return self.runner.state

    def set_hyperparams(self, **values: float) -> None:
        """Changes hyperparameter feeds (a schedule) without rebuilding anything."""
        current = {k: float(v) for k, v in self.hp.items()}
        self.hp = self.step.hyperparam_feeds(**{**current, **values})

    def fit(self, data: Mapping[str, np.ndarray], epochs: int) -> list[dict[str, float]]:
        """Runs epochs ``self.epoch + 1 .. epochs``; returns the history of all epochs."""
        names = [s["name"] for s in self.step.manifest["batch_inputs"]]
        n = data_length(data, names, "Trainer.fit")
        while self.epoch < epochs:
            self.history.append(self._epoch(data, names, n, epochs))
            if self.checkpoint:
                self.save(self.checkpoint)
        return self.history

    def _epoch(self, data: Mapping[str, np.ndarray], names: list[str], n: int,
               epochs: int) -> dict[str, float]:
        self.epoch += 1
        start, sums, count = time.perf_counter(), {}, 0
        bar = Progress(batches(n, self.batch_size, self.rng, self.shuffle),
                       desc=f"epoch {self.epoch}",
                       total=(n + self.batch_size - 1) // self.batch_size)
        for idx in bar:
            out = self.train_batch({k: data[k][idx] for k in names})
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
            count += len(idx)
            bar.set(loss=out[self.step.manifest["loss"]])
        row = {"epoch": float(self.epoch), **{k: v / count for k, v in sums.items()}}
        if self.evaluate is not None:
            row.update(self.evaluate(self.state))
        row["seconds"] = time.perf_counter() - start
        if self.verbose:
            shown = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k not in ("epoch",))
            print(f"[{self.engine}] epoch {self.epoch}/{epochs} {shown}", flush=True)
        return row

    def train_batch(self, batch: Mapping[str, np.ndarray]) -> dict[str, float]:
        """One step on ``batch`` (arrays by input name; dropout masks are drawn here): the
        parameters move, and the loss and metrics from before the move come back."""
        batch = {**batch, **self.step.draw_masks(self.rng, batch)}
        out = self.runner(batch, self._step_hyperparams())
        self.steps += 1
        if self.on_step is not None:
            self.on_step(out)
        return out

    def _step_hyperparams(self) -> dict[str, np.ndarray]:
        """The hyperparameter feeds of the next step: ``lr`` times the schedule's factor."""
        if self.schedule is None:
            return self.hp
        lr = self.hp["lr"] * self.hp["lr"].dtype.type(self.schedule(self.steps))
        return {**self.hp, "lr": lr}

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Writes a checkpoint atomically (see the module docstring)."""
        meta = {"epoch": self.epoch, "steps": self.steps, "rng": self.rng.bit_generator.state,
                "history": self.history, "manifest": self.step.manifest,
                "hyperparams": {k: float(v) for k, v in self.hp.items()}}
        write_atomic(path, checkpoint_bytes(meta, self.state))

    def load(self, path: str) -> None:
        """Restores state, epoch, random generator, history and hyperparameters from ``path``."""
        meta, state = read_checkpoint(path)
        restore_progress(self, meta, path)
        self.runner = make_runner(self.step, self.engine, self.provider, state, self.threads,
                                  self.ort_options)


def read_checkpoint(path: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, carried state by name) from a checkpoint; reads the older layout too (state
    under ``state/NAME``, meta under ``meta``)."""
    with np.load(path) as z:
        if META in z.files:
            return (json.loads(z[META].tobytes().decode()),
                    {k: z[k] for k in z.files if k != META})
        if "meta" not in z.files:
            raise GraphError(f"{path} is not a graphdl training checkpoint")
        return (json.loads(z["meta"].tobytes().decode()),
                {k[len("state/"):]: z[k] for k in z.files if k.startswith("state/")})


def restore_progress(trainer: Any, meta: Mapping, path: str) -> None:
    """A checkpoint's epoch, history, step count, random generator and hyperparameters into
    ``trainer`` (a Trainer or a data-parallel trainer); GraphError when the checkpoint is for
    another training step."""
    if meta["manifest"]["next_step"] != trainer.step.manifest["next_step"]:
        raise GraphError(f"checkpoint {path} is for a different training step")
    trainer.epoch, trainer.history = int(meta["epoch"]), meta["history"]
    trainer.steps = int(meta.get("steps", 0))
    trainer.rng.bit_generator.state = meta["rng"]
    trainer.hp = trainer.step.hyperparam_feeds(**meta["hyperparams"])


def checkpoint_bytes(meta: Mapping, state: Mapping[str, np.ndarray]) -> bytes:
    """A checkpoint file's bytes: the state under the inputs' own names, the meta as JSON
    under META (read back by read_checkpoint)."""
    arrays = dict(state)
    arrays[META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()
