"""Import checks each node against its op's ONNX schema at the model's opset: attributes the
schema does not define, attributes of the wrong type and inputs past the schema's arity are
refused by name, in from_onnx and in every command that loads a model. What the schema allows
is read from onnx.defs, independently of graphdl's importers."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h

import graphdl as gd
from graphdl.onnx.checks import OnnxAttributeError


def _model(node: onnx.NodeProto, opset: int = 17) -> onnx.ModelProto:
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", T.FLOAT, [2, 2])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])


def test_onnx_itself_refuses_what_graphdl_refuses():
    """The reference: onnx's own checker refuses the same models."""
    for node in (h.make_node("MatMul", ["x", "x"], ["y"], transA=1),
                 h.make_node("Relu", ["x", "x"], ["y"])):
        with pytest.raises(onnx.checker.ValidationError):
            onnx.checker.check_model(_model(node), full_check=True)


@pytest.mark.parametrize("opset", [9, 13, 17])
def test_attribute_outside_the_schema_is_refused_by_name(opset):
    node = h.make_node("MatMul", ["x", "x"], ["y"], name="mm", transA=1)
    with pytest.raises(OnnxAttributeError) as e:
        gd.from_onnx(_model(node, opset))
    want = f"'mm' (op MatMul): attribute 'transA' is not defined by MatMul at ai.onnx opset"
    assert want in str(e.value) and f"opset {opset}" in str(e.value)


def test_attribute_of_another_opset_is_refused():
    """Unsqueeze's axes is an attribute before opset 13 and an input from 13 on."""
    unsqueeze = h.make_node("Unsqueeze", ["x"], ["y"], axes=[0])
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    got = gd.run(gd.from_onnx(_model(unsqueeze, 11)), {"x": x})["y"]
    np.testing.assert_array_equal(got, x[None])
    with pytest.raises(OnnxAttributeError, match="'axes' is not defined by Unsqueeze at "
                                                 "ai.onnx opset 13 .its attributes: none."):
        gd.from_onnx(_model(unsqueeze, 13))


def test_attribute_of_the_wrong_type_names_the_opset():
    node = h.make_node("Softmax", ["x"], ["y"], axis=1.0)
    with pytest.raises(OnnxAttributeError, match="'axis' must be INT at ai.onnx opset 17, "
                                                 "got FLOAT"):
        gd.from_onnx(_model(node))


def test_inputs_past_the_arity_are_refused():
    node = h.make_node("Split", ["x", "s"], ["y", "z"], axis=0)  # no split input before 13
    model = _model(node, 11)
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([1, 1]), "s"))
    with pytest.raises(OnnxAttributeError, match="has 2 inputs, but Split at ai.onnx opset 11 "
                                                 "takes at most 1"):
        gd.from_onnx(model)


@pytest.mark.parametrize("command", [["inspect"], ["run"], ["grad", "-o", "OUT"],
                                     ["export", "-o", "OUT"], ["viz", "-o", "OUT.dot"],
                                     ["explain", "--wrt", "x"]])
def test_every_command_refuses_it(tmp_path, command, capsys):
    from graphdl.tools import cli

    path = tmp_path / "m.onnx"
    onnx.save(_model(h.make_node("MatMul", ["x", "x"], ["y"], name="mm", transA=1)), path)
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in command]
    assert cli.main([argv[0], str(path), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "attribute 'transA' is not defined by MatMul" in err
