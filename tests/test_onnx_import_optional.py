"""ONNX optionals imported with their presence known at import time
(graphdl/onnx/importers/optional.py, graphdl/onnx/boundary.py): an optional graph input is
present unless named in ``absent_inputs``. Small models checked against
``onnx.reference.ReferenceEvaluator`` and onnxruntime, which take an absent optional as None;
and what graphdl refuses."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graphdl as gd
from graphdl.core.errors import OnnxError
from tests.onnx_models import make_model, matches_reference

F = TensorProto.FLOAT
BOOL = TensorProto.BOOL
RNG = np.random.default_rng(1)


def _optional_info(name: str, elem: onnx.TypeProto) -> onnx.ValueInfoProto:
    return helper.make_value_info(name, helper.make_optional_type_proto(elem))


def _x(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _has_model() -> onnx.ModelProto:
    """Whether optional input ``o`` holds a value, and ``a`` + 1 either way."""
    nodes = [helper.make_node("OptionalHasElement", ["o"], ["has"]),
             helper.make_node("Constant", [], ["one"], value_float=1.0),
             helper.make_node("Add", ["a", "one"], ["b"])]
    o = _optional_info("o", helper.make_tensor_type_proto(F, [3]))
    return make_model(nodes, [o, ("a", F, [3])], [("has", BOOL, []), ("b", F, [3])])


@pytest.mark.parametrize("ref", ["onnx", "onnxruntime"])
@pytest.mark.parametrize("present", [True, False])
def test_optional_input_present_or_absent(present, ref):
    feeds = {"o": _x(3) if present else None, "a": _x(3)}
    got = matches_reference(_has_model(), feeds, ref)
    assert bool(got["has"]) is present
    graph = gd.from_onnx(_has_model(), absent_inputs=() if present else ["o"])
    assert [v.name for v in graph.inputs] == (["o", "a"] if present else ["a"])
    assert graph.metadata.get("graphdl.absent_inputs") == (None if present else '["o"]')


@pytest.mark.parametrize("ref", ["onnx", "onnxruntime"])
def test_get_element_of_a_present_optional(ref):
    nodes = [helper.make_node("OptionalGetElement", ["o"], ["x"]),
             helper.make_node("Relu", ["x"], ["y"])]
    o = _optional_info("o", helper.make_tensor_type_proto(F, [2, 3]))
    matches_reference(make_model(nodes, [o], [("y", F, [2, 3])]), {"o": _x(2, 3)}, ref)


def test_optional_made_inside_the_graph():
    """Optional(a) holds a, Optional(type=...) holds nothing; an absent optional passes
    through Identity. Checked against onnxruntime: onnx's reference (1.23) makes the empty
    Optional a list holding None, which its OptionalHasElement counts as present."""
    tensor_type = helper.make_tensor_type_proto(F, [2])
    nodes = [helper.make_node("Optional", ["a"], ["full"]),
             helper.make_node("Optional", [], ["empty"], type=tensor_type),
             helper.make_node("Identity", ["empty"], ["still_empty"]),
             helper.make_node("OptionalHasElement", ["full"], ["has_full"]),
             helper.make_node("OptionalHasElement", ["still_empty"], ["has_empty"]),
             helper.make_node("OptionalGetElement", ["full"], ["y"])]
    outs = [("has_full", BOOL, []), ("has_empty", BOOL, []), ("y", F, [2])]
    got = matches_reference(make_model(nodes, [("a", F, [2])], outs), {"a": _x(2)},
                            "onnxruntime")
    assert bool(got["has_full"]) and not bool(got["has_empty"])


@pytest.mark.parametrize("ref", ["onnx", "onnxruntime"])
def test_optional_sequence_input_and_output(ref):
    """An optional sequence, present: its length comes from sequence_lengths like a plain
    sequence's, and an optional sequence output is its elements."""
    seq = helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, [2]))
    nodes = [helper.make_node("Identity", ["o"], ["out"]),
             helper.make_node("OptionalGetElement", ["o"], ["s"]),
             helper.make_node("ConcatFromSequence", ["s"], ["cat"], axis=0)]
    model = make_model(nodes, [_optional_info("o", seq)],
                       [_optional_info("out", seq), ("cat", F, [None])])
    got = matches_reference(model, {"o": [_x(2), _x(2)]}, ref)
    assert sorted(got) == ["cat", "out.0", "out.1"]
    graph = gd.from_onnx(model, sequence_lengths={"o": 2})
    assert json.loads(graph.metadata["graphdl.sequence_outputs"]) == {"out": ["out.0", "out.1"]}


# -- what graphdl refuses ----------------------------------------------------------------------


def _absent_model(reader: onnx.NodeProto, out) -> onnx.ModelProto:
    o = _optional_info("o", helper.make_tensor_type_proto(F, [3]))
    return make_model([reader], [o], [out])


@pytest.mark.parametrize("reader,out,says", [
    (helper.make_node("OptionalGetElement", ["o"], ["y"], name="get"), ("y", F, [3]),
     "'get' (op OptionalGetElement): input 0 ('o') is an absent optional"),
    (helper.make_node("Relu", ["o"], ["y"], name="act"), ("y", F, [3]),
     "'act' (op Relu) reads 'o', an absent optional"),
    (helper.make_node("Identity", ["o"], ["y"], name="same"),
     _optional_info("y", helper.make_tensor_type_proto(F, [3])),
     "graph output 'y' is an absent optional"),
])
def test_absence_where_a_value_is_needed_is_refused(reader, out, says):
    with pytest.raises(OnnxError) as e:
        gd.from_onnx(_absent_model(reader, out), absent_inputs=["o"])
    assert says in str(e.value) and "absent_inputs" in str(e.value), str(e.value)


def test_optional_sequence_input_needs_its_length():
    seq = helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, [2]))
    nodes = [helper.make_node("OptionalGetElement", ["o"], ["s"]),
             helper.make_node("SequenceLength", ["s"], ["n"])]
    model = make_model(nodes, [_optional_info("o", seq)], [("n", TensorProto.INT64, [])])
    with pytest.raises(OnnxError, match="graph input 'o' is a sequence.*sequence_lengths"):
        gd.from_onnx(model)
