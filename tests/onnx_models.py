"""Helpers for the ONNX import tests: small models built with onnx.helper, feeds as the ONNX
backend test cases give them (a list of arrays for a sequence, None for an absent optional)
turned into graphdl's tensor feeds and the ``from_onnx`` options they imply (see
graphdl/onnx/boundary.py), and a check of graphdl's outputs against onnx's reference or
onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import graphdl as gd


def make_model(nodes: list, inputs: list, outputs: list, inits: dict | None = None,
               opset: int = 18) -> onnx.ModelProto:
    """A model; ``inputs``/``outputs`` are (name, elem type, shape) or value infos, ``inits``
    maps names to arrays."""
    def info(v):
        return helper.make_tensor_value_info(*v) if isinstance(v, tuple) else v

    tensors = [onnx.numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or {}).items()]
    graph = helper.make_graph(nodes, "seq", [info(v) for v in inputs],
                              [info(v) for v in outputs], tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def spread(feeds: dict) -> tuple[dict[str, np.ndarray], dict]:
    """Tensor feeds with each list (a sequence) spread into ``name.0`` ...; the from_onnx
    options the feeds imply: the lists' lengths, and the names fed None (absent optionals)."""
    flat, lengths, absent = {}, {}, []
    for name, value in feeds.items():
        if value is None:
            absent.append(name)
        elif isinstance(value, list):
            lengths[name] = len(value)
            flat.update({f"{name}.{k}": arr for k, arr in enumerate(value)})
        else:
            flat[name] = value
    return flat, {"sequence_lengths": lengths, "absent_inputs": absent}


def matches_reference(model: onnx.ModelProto, feeds: dict, ref: str = "onnx") -> dict:
    """Runs ``model`` in graphdl and in onnx's reference (or onnxruntime); every output must
    agree in dtype, shape and value, a sequence output (a list there) as graphdl's tensor
    outputs ``name.0`` ... and no more. Returns graphdl's outputs."""
    if ref == "onnx":
        want = ReferenceEvaluator(model).run(None, feeds)
    else:
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        want = session.run(None, feeds)
    flat, options = spread(feeds)
    got = gd.run(gd.from_onnx(model, **options), flat)
    for out, w in zip(model.graph.output, want):
        if not isinstance(w, list):
            _same(got[out.name], w, out.name)
            continue
        assert f"{out.name}.{len(w)}" not in got, out.name
        for k, item in enumerate(w):
            _same(got[f"{out.name}.{k}"], item, f"{out.name}.{k}")
    return got


def _same(got: np.ndarray, want, name: str) -> None:
    want = np.asarray(want)
    assert got.dtype == want.dtype, name
    assert got.shape == want.shape, name
    np.testing.assert_array_equal(got, want, err_msg=name)
