"""Running a training step again and again: the carried state stays with the engine.

- :class:`NumpyRunner` runs the step in graphdl's interpreter.
- :class:`OrtRunner` runs the exported ONNX step in ONNX Runtime with IO binding: parameters and
  optimiser state live as ``OrtValue`` s on the provider's device between steps (each step's
  ``NAME.next`` outputs are bound as the next step's inputs), only the batch is copied in and
  only the loss and metrics are copied out. With ``provider="cuda"`` (the ``onnxruntime-gpu``
  wheel) the state stays in GPU memory; with ``"cpu"`` the same code runs, which is what the
  tests exercise here.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .train_step import TrainStep

_DEVICES = {"cpu": "cpu", "cuda": "cuda"}


class NumpyRunner:
    """The step in the NumPy interpreter; ``state`` holds NumPy arrays."""

    def __init__(self, step: TrainStep, state: Mapping[str, np.ndarray] | None = None):
        from .interpreter import Plan

        self.step, self.plan = step, Plan(step.graph)
        self._state = {k: np.asarray(v) for k, v in (state or step.initial).items()}
        self.reports = [step.manifest["loss"], *step.manifest["metrics"]]

    def __call__(self, feeds: Mapping[str, np.ndarray], hp: Mapping[str, np.ndarray]
                 ) -> dict[str, float]:
        out = self.plan({**feeds, **self._state, **hp})
        self._state = self.step.carry(out)
        return {k: float(out[k]) for k in self.reports}

    @property
    def state(self) -> dict[str, np.ndarray]:
        return dict(self._state)


class OrtRunner:
    """The exported step in ONNX Runtime, state kept on the device through IO binding."""

    def __init__(self, step: TrainStep, state: Mapping[str, np.ndarray] | None = None,
                 provider: str = "cpu", threads: int | None = None):
        import onnxruntime as ort

        from .runtime import ort_providers

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        self.step, self.device = step, _DEVICES.get(provider, "cpu")
        self.sess = ort.InferenceSession(step.to_onnx().SerializeToString(), opts,
                                         providers=ort_providers(provider))
        self._ort = ort
        self.reports = [step.manifest["loss"], *step.manifest["metrics"]]
        self._state = {k: self._to_device(v) for k, v in (state or step.initial).items()}
        self._hp_key: Any = None
        self._hp: dict[str, Any] = {}

    def _to_device(self, arr: np.ndarray):
        return self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(arr), self.device, 0)

    def __call__(self, feeds: Mapping[str, np.ndarray], hp: Mapping[str, np.ndarray]
                 ) -> dict[str, float]:
        key = tuple((k, float(v)) for k, v in sorted(hp.items()))
        if key != self._hp_key:  # hyperparameters go to the device only when they change
            self._hp, self._hp_key = {k: self._to_device(np.asarray(v)) for k, v in hp.items()}, key
        binding = self.sess.io_binding()
        for name, arr in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(arr))
        for name, val in {**self._state, **self._hp}.items():
            binding.bind_ortvalue_input(name, val)
        nxt = list(self.step.next_step)
        for name in self.reports:
            binding.bind_output(name, "cpu")
        for name in nxt:
            binding.bind_output(name, self.device)
        self.sess.run_with_iobinding(binding)
        outs = binding.get_outputs()
        k = len(self.reports)
        self._state = {self.step.next_step[n]: v for n, v in zip(nxt, outs[k:])}
        return {n: float(v.numpy()) for n, v in zip(self.reports, outs[:k])}

    @property
    def state(self) -> dict[str, np.ndarray]:
        """The carried state copied to NumPy (for checkpoints and evaluation)."""
        return {k: v.numpy() for k, v in self._state.items()}


def make_runner(step: TrainStep, engine: str = "numpy", provider: str = "cpu",
                state: Mapping[str, np.ndarray] | None = None, threads: int | None = None):
    """A runner for ``engine`` "numpy" (the interpreter) or "ort" (ONNX Runtime)."""
    from .errors import GraphError

    if engine == "numpy":
        return NumpyRunner(step, state)
    if engine == "ort":
        return OrtRunner(step, state, provider, threads)
    raise GraphError(f"unknown engine {engine!r}; expected 'numpy' or 'ort'")
