"""Running a training step again and again: the carried state stays with the engine.

- :class:`NumpyRunner` runs the step in graphdl's interpreter.
- :class:`OrtRunner` runs the exported ONNX step in ONNX Runtime with IO binding: parameters and
  optimiser state live as ``OrtValue`` s on the provider's device between steps (each step
  writes its ``NAME.next`` outputs into the buffers the next step reads), only the batch is
  copied in and only the loss and metrics are copied out. With ``provider="cuda"`` (the
  ``onnxruntime-gpu`` wheel) the state stays in GPU memory; with ``"cpu"`` the same code runs,
  which is what the tests exercise here.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..engine.label_checks import check_fed_labels
from .step import TrainStep

_DEVICES = {"cpu": "cpu", "cuda": "cuda"}


class NumpyRunner:
    """The step in the NumPy interpreter; ``state`` holds NumPy arrays."""

    def __init__(self, step: TrainStep, state: Mapping[str, np.ndarray] | None = None):
        from ..engine.interpreter import Plan
        from ..onnx.specialisation import SpecialisableGraph

        self.step = step  # a template (graphdl.onnx.specialisation) is run through graphdl.run
        self.plan = None if isinstance(step.graph, SpecialisableGraph) else Plan(step.graph)
        self._state = {k: np.asarray(v) for k, v in (state or step.initial).items()}
        self.reports = [step.manifest["loss"], *step.manifest["metrics"]]

    def __call__(self, feeds: Mapping[str, np.ndarray], hp: Mapping[str, np.ndarray]
                 ) -> dict[str, float]:
        from ..engine.runtime import run

        fed = {**feeds, **self._state, **hp}
        out = self.plan(fed) if self.plan is not None else run(self.step.graph, fed)
        self._state = self.step.carry(out)
        return {k: float(out[k]) for k in self.reports}

    @property
    def state(self) -> dict[str, np.ndarray]:
        return dict(self._state)


class OrtRunner:
    """The exported step in ONNX Runtime, state kept on the device through IO binding.

    The carried state lives in two sets of device buffers used in turn: one step reads set A
    and writes its ``NAME.next`` outputs into set B, the next reads B and writes A. Both
    bindings are made once; a step binds only its batch (and hyperparameters when they
    change), so the per-step Python work does not grow with the number of parameters.
    """

    def __init__(self, step: TrainStep, state: Mapping[str, np.ndarray] | None = None,
                 provider: str = "cpu", threads: int | None = None, options: Any = None):
        """``options``: an :class:`~graphdl.engine.ort_options.OrtOptions` or an
        ``onnxruntime.SessionOptions`` (graphdl/engine/ort_options.py; default: OrtOptions())."""
        import onnxruntime as ort

        from ..engine.ort_options import session_options
        from ..engine.runtime import ort_providers

        opts = session_options(options, threads)
        self.step, self.device = step, _DEVICES.get(provider, "cpu")
        from ..onnx.opsets import installed_ort_target

        model = step.to_onnx(target=installed_ort_target())  # the opset/IR this runtime loads
        self.sess = ort.InferenceSession(model.SerializeToString(), opts,
                                         providers=ort_providers(provider))
        self._ort = ort
        self.reports = [step.manifest["loss"], *step.manifest["metrics"]]
        self._reports = self._report_buffers()
        start = {k: np.array(v, order="C") for k, v in (state or step.initial).items()}
        # copies: on the CPU an OrtValue shares a NumPy array's memory, and both sets are
        # written by later steps
        self._sets = [{k: self._to_device(v) for k, v in start.items()},
                      {k: self._empty_like(v) for k, v in start.items()}]
        self._bindings = [self._binding(self._sets[0], self._sets[1]),
                          self._binding(self._sets[1], self._sets[0])]
        self._turn = 0
        self._hp_key: Any = None
        self._hp: dict[str, Any] = {}  # hyperparameter OrtValues, kept alive while bound

    def _to_device(self, arr: np.ndarray):
        # np.require keeps a 0-d array 0-d (np.ascontiguousarray would make it shape [1], and a
        # scalar state such as optim.step would come back as [1] from the device)
        return self._ort.OrtValue.ortvalue_from_numpy(np.require(arr, requirements="C"),
                                                      self.device, 0)

    def _empty_like(self, arr: np.ndarray):
        return self._ort.OrtValue.ortvalue_from_shape_and_type(arr.shape, arr.dtype,
                                                               self.device, 0)

    def _report_buffers(self) -> dict[str, Any]:
        """A CPU buffer for each report (loss, metrics) of static shape; the others are
        allocated by onnxruntime at each step."""
        types = {v.name: v.type for v in self.step.graph.outputs}
        out = {}
        for name in self.reports:
            t = types[name]
            if t.shape is not None and all(isinstance(d, int) for d in t.shape):
                out[name] = self._ort.OrtValue.ortvalue_from_shape_and_type(
                    t.shape, t.dtype.np, "cpu", 0)
        return out

    def _binding(self, reads: dict, writes: dict):
        """A binding that reads state set ``reads`` and writes the next state into ``writes``
        (every next-state output has its input's shape and dtype); reports go to the CPU and
        are bound first, so they lead the binding's outputs."""
        binding = self.sess.io_binding()
        for name in self.reports:
            if name in self._reports:
                binding.bind_ortvalue_output(name, self._reports[name])
            else:
                binding.bind_output(name, "cpu")
        for name, val in reads.items():
            binding.bind_ortvalue_input(name, val)
        for out, name in self.step.next_step.items():
            binding.bind_ortvalue_output(out, writes[name])
        return binding

    def __call__(self, feeds: Mapping[str, np.ndarray], hp: Mapping[str, np.ndarray]
                 ) -> dict[str, float]:
        key = tuple((k, float(v)) for k, v in sorted(hp.items()))
        if key != self._hp_key:  # hyperparameters go to the device only when they change
            self._hp, self._hp_key = {k: self._to_device(np.asarray(v)) for k, v in hp.items()}, key
            for binding in self._bindings:
                for name, val in self._hp.items():
                    binding.bind_ortvalue_input(name, val)
        check_fed_labels(self.step.graph, feeds)
        binding = self._bindings[self._turn]
        for name, arr in feeds.items():
            binding.bind_cpu_input(name, np.require(arr, requirements="C"))
        self.sess.run_with_iobinding(binding)
        self._turn ^= 1
        if len(self._reports) == len(self.reports):
            return {n: float(self._reports[n].numpy()) for n in self.reports}
        outs = binding.get_outputs()
        return {n: float(outs[i].numpy()) for i, n in enumerate(self.reports)}

    @property
    def state(self) -> dict[str, np.ndarray]:
        """The carried state copied to NumPy (for checkpoints and evaluation)."""
        return {k: np.array(v.numpy()) for k, v in self._sets[self._turn].items()}


def make_runner(step: TrainStep, engine: str = "numpy", provider: str = "cpu",
                state: Mapping[str, np.ndarray] | None = None, threads: int | None = None,
                options: Any = None):
    """A runner for ``engine`` "numpy" (the interpreter) or "ort" (ONNX Runtime, with
    ``options`` as OrtRunner takes them)."""
    from ..core.errors import GraphError

    if engine == "numpy":
        return NumpyRunner(step, state)
    if engine == "ort":
        return OrtRunner(step, state, provider, threads, options)
    raise GraphError(f"unknown engine {engine!r}; expected 'numpy' or 'ort'")
