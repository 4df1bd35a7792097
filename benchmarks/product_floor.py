"""The floor under an exported step's time in onnxruntime: its matrix products and
convolutions alone.

Most of what export decides (which elementwise ops, how many passes over memory, how data is
laid out for the products) leaves the products themselves alone: their shapes are the
model's, their speed is onnxruntime's kernels'. :func:`products_only` cuts a model down to
its ``MatMul``, ``Gemm``, ``Conv`` and ``ConvTranspose`` nodes, each reading graph inputs
filled with the very values it reads in one run of the whole model. Timed with the same
session options, that is what the step would take if everything else were free. The
realistic benchmark (``bench_realistic``) times it next to PyTorch eager's whole step: where
this floor alone is at or above a target ratio, no change outside the products can reach the
target; it needs faster product kernels, or products of another shape (a different lowering
of the weight gradient, for instance: ``benchmarks/bench_conv_grads.py`` times those).

The cut model has no Transposes or Adds for onnxruntime to fuse into its products, so it
times the plain kernels on contiguous inputs.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

#: the ONNX ops whose kernels are matrix products (convolutions included)
PRODUCTS = ("MatMul", "Gemm", "Conv", "ConvTranspose")


def products_only(model: Any, feeds: Mapping[str, np.ndarray],
                  options: Any = None) -> tuple[Any, dict[str, np.ndarray]]:
    """(a model of ``model``'s top-level product nodes alone, its feeds). Every input of a
    product node that no other product node computes becomes a graph input, fed the value
    it has in one onnxruntime run of ``model`` on ``feeds`` (``options``: its
    SessionOptions); the product nodes' outputs are the graph outputs."""
    from onnx import helper

    g = model.graph
    nodes = [n for n in g.node if n.op_type in PRODUCTS]
    if not nodes:
        raise ValueError(f"model {g.name!r} has no {'/'.join(PRODUCTS)} node")
    made = {o for n in nodes for o in n.output}
    needed = list(dict.fromkeys(i for n in nodes for i in n.input if i and i not in made))
    values = _values(model, feeds, needed, options)
    inputs = [helper.make_tensor_value_info(
        k, helper.np_dtype_to_tensor_dtype(values[k].dtype), values[k].shape) for k in needed]
    dtype: dict[str, int] = {k: v.type.tensor_type.elem_type for k, v in
                             zip(needed, inputs)}
    for n in nodes:  # a product's output has its first input's element type
        dtype.update((o, dtype[n.input[0]]) for o in n.output)
    outputs = [helper.make_tensor_value_info(o, dtype[o], None)
               for n in nodes for o in n.output if o]
    graph = helper.make_graph(nodes, f"{g.name}_products", inputs, outputs)
    cut = helper.make_model(graph, opset_imports=model.opset_import,
                            ir_version=model.ir_version)
    return cut, values


def _values(model: Any, feeds: Mapping[str, np.ndarray], names: list[str],
            options: Any) -> dict[str, np.ndarray]:
    """The named values of one run of ``model``: initializers and feeds as they are, the
    rest as extra outputs of an onnxruntime session."""
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    init = {t.name: t for t in model.graph.initializer}
    out = {k: np.asarray(feeds[k]) for k in names if k in feeds}
    out.update({k: numpy_helper.to_array(init[k]) for k in names if k in init and k not in out})
    rest = [k for k in names if k not in out]
    if rest:
        probe = type(model)()
        probe.CopyFrom(model)
        have = {o.name for o in probe.graph.output}
        probe.graph.output.extend(helper.make_empty_tensor_value_info(k)
                                  for k in rest if k not in have)
        sess = ort.InferenceSession(probe.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"])
        given = {i.name: feeds[i.name] for i in sess.get_inputs()}
        out.update(zip(rest, sess.run(rest, given)))
    return out


def floor_stepper(model: Any, feeds: Mapping[str, np.ndarray],
                  threads: int = 1) -> Callable[[], float]:
    """A zero-argument callable running the products of ``model`` alone once in onnxruntime
    (graphdl's default session options at ``threads``); it returns 0.0 (it has no loss)."""
    import onnxruntime as ort

    from graphdl.engine.ort_options import session_options

    cut, values = products_only(model, feeds, session_options(None, threads))
    sess = ort.InferenceSession(cut.SerializeToString(), session_options(None, threads),
                                providers=["CPUExecutionProvider"])

    def run() -> float:
        sess.run(None, values)
        return 0.0
    return run


def step_floor(step: Any, feeds: Mapping[str, np.ndarray], threads: int = 1
               ) -> Callable[[], float]:
    """:func:`floor_stepper` of a TrainStep's export for the installed onnxruntime, from its
    initial state and default hyperparameters on the batch ``feeds``."""
    from graphdl.onnx.opsets import installed_ort_target

    model = step.to_onnx(target=installed_ort_target())
    return floor_stepper(model, {**step.initial, **step.hyperparam_feeds(), **feeds}, threads)
