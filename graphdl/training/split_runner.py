"""Running a split training step (graphdl.training.step_split) in either engine.

The gradient graph and the update graph each run as a whole: in graphdl's interpreter (one
compiled plan each) or in ONNX Runtime (one session each). The state stays in NumPy between
them because the gradients leave the engine anyway, to be all-reduced; a parameter copy per step
is small next to the forward and backward passes.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from ..core.errors import GraphError
from ..core.ir import Graph

Run = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


def graph_runner(graph: Graph, engine: str = "numpy", provider: str = "cpu",
                 threads: int | None = None) -> Run:
    """A function from feeds by input name to every output by name, compiled once."""
    if engine == "numpy":
        from ..engine.interpreter import Plan

        plan, wanted = Plan(graph), {v.name for v in graph.inputs}
        return lambda feeds: plan({k: v for k, v in feeds.items() if k in wanted})
    if engine == "ort":
        return _ort_runner(graph, provider, threads)
    raise GraphError(f"unknown engine {engine!r}; expected 'numpy' or 'ort'")


def _ort_runner(graph: Graph, provider: str, threads: int | None) -> Run:
    import onnxruntime as ort

    from ..onnx.export import to_onnx
    from ..engine.runtime import ort_providers

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(to_onnx(graph).SerializeToString(), opts,
                                providers=ort_providers(provider))
    names = [o.name for o in sess.get_outputs()]
    wanted = {i.name for i in sess.get_inputs()}

    def run(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        res = sess.run(names, {k: v for k, v in feeds.items() if k in wanted})
        return dict(zip(names, res))

    return run
