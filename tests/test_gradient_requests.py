"""ONNX's Gradient op (ai.onnx.preview.training): imported as a request node, expanded by
``passes.expand_gradients`` into graphdl's backprop graph; values against hand-derived ones."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphdl as gd
import passes
from graphdl.core.errors import GradError, GraphError

F = TensorProto.FLOAT


def _model(nodes: list, inputs: list, outputs: list, inits: list = ()) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                               helper.make_opsetid("ai.onnx.preview.training",
                                                                   1)])


def _matrix_model(outputs: tuple[str, ...] = ("dY_dW",), with_z: bool = False,
                  read_by: str | None = None) -> onnx.ModelProto:
    """Y = X @ W (+ Z): a non-scalar y, so the seed is all ones: dY/dW = X^T @ ones."""
    nodes = [helper.make_node("MatMul", ["X", "W"], ["XW"])]
    nodes.append(helper.make_node("Add", ["XW", "Z"], ["Y"]) if with_z else
                 helper.make_node("Identity", ["XW"], ["Y"]))
    nodes.append(helper.make_node("Gradient", ["W", "Z"] if with_z else ["W"], list(outputs),
                                  domain="ai.onnx.preview.training", xs=["W"], y="Y",
                                  **({"zs": ["Z"]} if with_z else {})))
    outs = [helper.make_tensor_value_info("Y", F, [3, 2])]
    outs += [helper.make_tensor_value_info(o, F, [4, 2]) for o in outputs if o]
    if read_by:
        nodes.append(helper.make_node(read_by, ["dY_dW"], ["twice"]))
        outs.append(helper.make_tensor_value_info("twice", F, [4, 2]))
    ins = [helper.make_tensor_value_info("X", F, [3, 4])]
    inits = [numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(4, 2), "W")]
    if with_z:
        ins.append(helper.make_tensor_value_info("Z", F, [3, 2]))
    return _model(nodes, ins, outs, inits)


X = np.arange(12, dtype=np.float32).reshape(3, 4) / 10


def test_a_non_scalar_y_is_seeded_with_ones():
    g = passes.expand_gradients(gd.from_onnx(_matrix_model(with_z=True)))
    assert "gradient" not in {n.op for n in g.nodes}
    feeds = {"X": X, "Z": np.ones((3, 2), np.float32)}
    got = gd.run(g, feeds)
    np.testing.assert_allclose(got["dY_dW"], X.T @ np.ones((3, 2)), rtol=1e-6)
    np.testing.assert_allclose(got["Y"], X @ np.arange(8).reshape(4, 2) + 1, rtol=1e-6)
    ort = gd.run(g, feeds, backend="ort")
    np.testing.assert_allclose(ort["dY_dW"], got["dY_dW"], rtol=1e-6)


def test_an_unexpanded_request_says_how_to_expand_it():
    g = gd.from_onnx(_matrix_model())
    with pytest.raises(GraphError, match="passes.expand_gradients"):
        gd.run(g, {"X": X})
    with pytest.raises(GraphError, match="passes.expand_gradients"):
        gd.to_onnx(g)


def test_a_request_read_by_another_node_is_refused():
    g = gd.from_onnx(_matrix_model(read_by="Neg"))
    with pytest.raises(GradError, match="result of a gradient request"):
        passes.expand_gradients(g)


def test_the_gradient_domain_is_the_only_other_domain_imported():
    m = _matrix_model()
    m.graph.node[0].domain = "com.example"
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(GraphError, match="domain 'com.example' is not supported"):
        gd.from_onnx(m)


def test_the_command_line_expands_requests(tmp_path):
    path = tmp_path / "grad.onnx"
    onnx.save(_matrix_model(), str(path))
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "out.npz"
    res = subprocess.run([sys.executable, "-m", "graphdl", "run", str(path), "--feed",
                          f"X={tmp_path / 'X.npy'}", "-o", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(np.load(out)["dY_dW"], X.T @ np.ones((3, 2)), rtol=1e-6)
