"""ONNX sequence ops imported as static sequences (graphdl/onnx_importers/sequence.py): small
models built with onnx.helper, run through ``from_onnx`` and graphdl's interpreter, checked
against ``onnx.reference.ReferenceEvaluator``; and the models graphdl must refuse, each with an
OnnxError naming the node and the reason."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import graphdl as gd
import passes
from graphdl.errors import OnnxError

F = TensorProto.FLOAT
RNG = np.random.default_rng(0)


def _model(nodes: list, inputs: list, outputs: list, inits: dict | None = None,
           opset: int = 18) -> onnx.ModelProto:
    """A model; ``inputs``/``outputs`` are (name, elem type, shape) or value infos, ``inits``
    maps names to arrays."""
    def info(v):
        return helper.make_tensor_value_info(*v) if isinstance(v, tuple) else v

    tensors = [onnx.numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or {}).items()]
    graph = helper.make_graph(nodes, "seq", [info(v) for v in inputs],
                              [info(v) for v in outputs], tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _pos(name: str, value: int) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name, TensorProto.INT64, [], [value]))


def _matches_reference(model: onnx.ModelProto, feeds: dict, ref: str = "onnx") -> dict:
    """Runs ``model`` in graphdl and in onnx's reference (or onnxruntime); every output must
    agree in dtype, shape and value. Returns graphdl's outputs."""
    if ref == "onnx":
        want = ReferenceEvaluator(model).run(None, feeds)
    else:
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        want = session.run(None, feeds)
    got = gd.run(gd.from_onnx(model), feeds)
    for out, w in zip(model.graph.output, want):
        w = np.asarray(w)
        assert got[out.name].dtype == w.dtype, out.name
        assert got[out.name].shape == w.shape, out.name
        np.testing.assert_array_equal(got[out.name], w, err_msg=out.name)
    return got


def _abc(names: str = "abc") -> dict:
    return {k: RNG.standard_normal((2, 3)).astype(np.float32) for k in names}


ABC = [(k, F, [2, 3]) for k in "abc"]


@pytest.mark.parametrize("pos", [0, 1, 2, -1, -2, -3])
def test_sequence_at_any_position(pos):
    nodes = [helper.make_node("SequenceConstruct", ["a", "b", "c"], ["s"]), _pos("p", pos),
             helper.make_node("SequenceAt", ["s", "p"], ["y"])]
    _matches_reference(_model(nodes, ABC, [("y", F, None)]), _abc())


@pytest.mark.parametrize("pos", [None, 0, 1, 2, -1, -2])
def test_insert_then_concat(pos):
    """Insert at the end (no position or position n), the front, the middle and from the
    end; the whole sequence is read back by ConcatFromSequence, its length by SequenceLength.
    onnx's reference (1.23) wraps position n to 0, against the spec, so that case is checked
    against onnxruntime."""
    ins = ["s0", "c"] + ([] if pos is None else ["p"])
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s0"]),
             helper.make_node("SequenceInsert", ins, ["s1"]),
             helper.make_node("ConcatFromSequence", ["s1"], ["y"], axis=0),
             helper.make_node("SequenceLength", ["s1"], ["n"])]
    if pos is not None:
        nodes.insert(0, _pos("p", pos))
    model = _model(nodes, ABC, [("y", F, None), ("n", TensorProto.INT64, [])])
    got = _matches_reference(model, _abc(), "onnx" if pos != 2 else "onnxruntime")
    assert got["n"] == 3


@pytest.mark.parametrize("pos", [None, 0, 1, -3])
def test_erase(pos):
    ins = ["s0"] + ([] if pos is None else ["p"])
    nodes = [helper.make_node("SequenceConstruct", ["a", "b", "c"], ["s0"]),
             helper.make_node("SequenceErase", ins, ["s1"]),
             helper.make_node("ConcatFromSequence", ["s1"], ["y"], axis=1),
             helper.make_node("SequenceLength", ["s1"], ["n"])]
    if pos is not None:
        nodes.insert(0, _pos("p", pos))
    _matches_reference(_model(nodes, ABC, [("y", F, None), ("n", TensorProto.INT64, [])]),
                       _abc())


def test_empty_sequence_built_up_by_inserts():
    nodes = [helper.make_node("SequenceEmpty", [], ["s0"], dtype=F),
             helper.make_node("SequenceInsert", ["s0", "a"], ["s1"]),
             _pos("p", 0),
             helper.make_node("SequenceInsert", ["s1", "b", "p"], ["s2"]),
             helper.make_node("ConcatFromSequence", ["s2"], ["y"], axis=-1)]
    _matches_reference(_model(nodes, ABC[:2], [("y", F, None)]), _abc("ab"))


@pytest.mark.parametrize("axis,new_axis", [(0, 0), (1, 0), (-1, 0), (0, 1), (2, 1), (-1, 1),
                                           (-3, 1)])
def test_concat_from_sequence(axis, new_axis):
    nodes = [helper.make_node("SequenceConstruct", ["a", "b", "c"], ["s"]),
             helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=axis, new_axis=new_axis)]
    _matches_reference(_model(nodes, ABC, [("y", F, None)]), _abc())


@pytest.mark.parametrize("axis,new_axis", [(1, 0), (-3, 1)])
def test_concat_of_one_element(axis, new_axis):
    nodes = [helper.make_node("SequenceConstruct", ["a"], ["s"]),
             helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=axis, new_axis=new_axis)]
    _matches_reference(_model(nodes, ABC[:1], [("y", F, None)]), _abc("a"))


def test_identity_passes_a_sequence_through():
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s"]),
             helper.make_node("Identity", ["s"], ["t"]),
             _pos("p", 1),
             helper.make_node("SequenceAt", ["t", "p"], ["y"])]
    _matches_reference(_model(nodes, ABC[:2], [("y", F, None)]), _abc("ab"))


def _split_model(attrs: dict, split: np.ndarray | None, x_shape: list) -> onnx.ModelProto:
    """SplitToSequence of x; every piece is an output, and the count too."""
    ins = ["x"] + ([] if split is None else ["split"])
    want = ReferenceEvaluator(_model(
        [helper.make_node("SplitToSequence", ins, ["s"], **attrs),
         helper.make_node("SequenceLength", ["s"], ["n"])],
        [("x", F, x_shape)], [("n", TensorProto.INT64, [])],
        None if split is None else {"split": split})).run(None, {"x": _x(x_shape)})
    nodes = [helper.make_node("SplitToSequence", ins, ["s"], **attrs),
             helper.make_node("SequenceLength", ["s"], ["n"])]
    outs = [("n", TensorProto.INT64, [])]
    for k in range(int(want[0])):
        nodes += [_pos(f"p{k}", k), helper.make_node("SequenceAt", ["s", f"p{k}"], [f"y{k}"])]
        outs.append((f"y{k}", F, None))
    return _model(nodes, [("x", F, x_shape)], outs,
                  None if split is None else {"split": split})


def _x(shape: list) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("attrs,split", [
    ({}, None), ({"axis": 1, "keepdims": 0}, None), ({"axis": -1}, None),
    ({"axis": 1}, np.asarray(2, np.int64)), ({"axis": 1}, np.asarray(4, np.int64)),
    ({"axis": 1}, np.asarray([1, 0, 3, 3], np.int64)), ({"axis": 0}, np.asarray([1, 2], np.int32)),
])
def test_split_to_sequence_with_static_sizes(attrs, split):
    """Pieces of 1 (kept or squeezed), chunks of a scalar (7 by 4: the last is smaller), and
    sizes given as a constant tensor (including an empty piece)."""
    _matches_reference(_split_model(attrs, split, [3, 7]), {"x": _x([3, 7])})


def _runtime_split_model() -> onnx.ModelProto:
    """x of symbolic length n, split by sizes fed at run time: the pieces' count (3) is static,
    their lengths are not."""
    nodes = [helper.make_node("SplitToSequence", ["x", "sizes"], ["s"], axis=-1),
             helper.make_node("SequenceLength", ["s"], ["n"]),
             _pos("p", -1), _pos("q", 0),
             helper.make_node("SequenceAt", ["s", "p"], ["last"]),
             helper.make_node("SequenceAt", ["s", "q"], ["first"]),
             helper.make_node("ConcatFromSequence", ["s"], ["all"], axis=1)]
    inputs = [("x", F, [2, "n"]), ("sizes", TensorProto.INT64, [3])]
    outs = [("n", TensorProto.INT64, []), ("last", F, None), ("first", F, None),
            ("all", F, None)]
    return _model(nodes, inputs, outs)


@pytest.mark.parametrize("sizes,n", [([1, 2, 3], 6), ([4, 0, 1], 5), ([0, 0, 2], 2)])
def test_split_to_sequence_with_run_time_sizes(sizes, n):
    model = _runtime_split_model()
    graph = gd.from_onnx(model)
    (last,) = [v for v in graph.outputs if v.name == "last"]
    assert last.type.shape[0] == 2 and not isinstance(last.type.shape[1], int)
    feeds = {"x": _x([2, n]), "sizes": np.asarray(sizes, np.int64)}
    got = _matches_reference(model, feeds)
    assert got["n"] == 3
    ort = gd.run(graph, feeds, backend="ort")  # the slices export as standard ONNX
    np.testing.assert_array_equal(ort["last"], got["last"])


def test_split_pieces_are_made_only_when_used():
    """A split sequence only counted adds no node (its pieces are made on first use); one
    read by SequenceAt adds the one split."""
    count = [helper.make_node("SplitToSequence", ["x"], ["s"]),
             helper.make_node("SequenceLength", ["s"], ["n"])]
    g = gd.from_onnx(_model(count, [("x", F, [4, 2])], [("n", TensorProto.INT64, [])]))
    assert [n.op for n in g.nodes] == ["constant"]
    read = count[:1] + [_pos("p", 3), helper.make_node("SequenceAt", ["s", "p"], ["y"])]
    g = gd.from_onnx(_model(read, [("x", F, [4, 2])], [("y", F, None)]))
    assert [n.op for n in g.nodes] == ["split"]


def test_gradient_flows_through_run_time_split():
    """d/dx sum(w * last piece) is w on the last piece's positions, zero elsewhere."""
    nodes = [helper.make_node("SplitToSequence", ["x", "sizes"], ["s"]), _pos("p", 1),
             helper.make_node("SequenceAt", ["s", "p"], ["piece"]),
             helper.make_node("Mul", ["piece", "w"], ["prod"]),
             helper.make_node("ReduceSum", ["prod"], ["loss"], keepdims=0)]
    model = _model(nodes, [("x", F, ["n"]), ("sizes", TensorProto.INT64, [2]), ("w", F, [3])],
                   [("loss", F, [])])
    grad = passes.grad(gd.from_onnx(model), "loss", ["x"])
    w = np.asarray([1.5, -2.0, 3.0], np.float32)
    got = gd.run(grad, {"x": _x([5]), "sizes": np.asarray([2, 3], np.int64), "w": w})
    np.testing.assert_array_equal(got["x_grad"], np.concatenate([np.zeros(2, np.float32), w]))


# -- what graphdl refuses ----------------------------------------------------------------------


def _refused(model: onnx.ModelProto, *parts: str) -> str:
    with pytest.raises(OnnxError) as e:
        gd.from_onnx(model)
    for part in parts:
        assert part in str(e.value), (part, str(e.value))
    return str(e.value)


def test_position_fed_at_run_time_is_refused():
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s"], name="build"),
             helper.make_node("SequenceAt", ["s", "p"], ["y"], name="pick")]
    model = _model(nodes, ABC[:2] + [("p", TensorProto.INT64, [])], [("y", F, None)])
    _refused(model, "'pick' (op SequenceAt)", "'p'", "must be known at import time")


@pytest.mark.parametrize("op,pos", [("SequenceAt", 2), ("SequenceAt", -3),
                                    ("SequenceErase", 5), ("SequenceInsert", 3)])
def test_position_out_of_range_is_refused(op, pos):
    ins = ["s", "a", "p"] if op == "SequenceInsert" else ["s", "p"]
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s"]), _pos("p", pos),
             helper.make_node(op, ins, ["t"], name="bad")]
    out = ("t", F, None) if op == "SequenceAt" else ("n", TensorProto.INT64, [])
    if op != "SequenceAt":
        nodes.append(helper.make_node("SequenceLength", ["t"], ["n"]))
    _refused(_model(nodes, ABC[:2], [out]), f"'bad' (op {op})", f"position {pos} is out of "
             "range for a sequence of length 2")


def test_sequence_as_graph_output_is_refused():
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s"], name="build")]
    seq_out = helper.make_tensor_sequence_value_info("s", F, None)
    _refused(_model(nodes, ABC[:2], [seq_out]), "graph output 's'",
             "'build' (op SequenceConstruct)", "sequence")


def test_sequence_as_graph_input_is_refused():
    seq_in = helper.make_tensor_sequence_value_info("s", F, None)
    nodes = [helper.make_node("SequenceLength", ["s"], ["n"], name="count")]
    _refused(_model(nodes, [seq_in], [("n", TensorProto.INT64, [])]), "graph input 's'",
             "'count' (op SequenceLength)", "built inside the graph")


def test_tensor_op_reading_a_sequence_is_refused():
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s"], name="build"),
             helper.make_node("Relu", ["s"], ["y"], name="act")]
    _refused(_model(nodes, ABC[:2], [("y", F, None)]), "'act' (op Relu)", "'s', a sequence",
             "'build' (op SequenceConstruct)")


def test_sequence_op_reading_a_tensor_is_refused():
    nodes = [helper.make_node("SequenceLength", ["a"], ["n"], name="count")]
    _refused(_model(nodes, ABC[:1], [("n", TensorProto.INT64, [])]),
             "'count' (op SequenceLength)", "'a') is a tensor")


def test_mixed_element_types_are_refused():
    nodes = [helper.make_node("SequenceConstruct", ["a", "i"], ["s"], name="build"),
             helper.make_node("SequenceLength", ["s"], ["n"])]
    _refused(_model(nodes, [ABC[0], ("i", TensorProto.INT64, [2])],
                    [("n", TensorProto.INT64, [])]), "'build'", "float32", "int64")


def test_value_info_of_sequence_type_is_accepted():
    """Shape inference records sequence types in value_info; the importer reads past them."""
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s"]), _pos("p", 0),
             helper.make_node("SequenceAt", ["s", "p"], ["y"])]
    model = onnx.shape_inference.infer_shapes(_model(nodes, ABC[:2], [("y", F, None)]))
    assert any(v.type.HasField("sequence_type") for v in model.graph.value_info)
    _matches_reference(model, _abc("ab"))


def _sizes(name: str, value) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(
        np.asarray(value), name))


_SEQ = helper.make_node("SequenceConstruct", ["a", "a"], ["s"])
_LEN = helper.make_node("SequenceLength", ["t"], ["n"])
#: malformed sequence nodes: (nodes, what the error must say)
MALFORMED = {
    "construct_nothing": ([helper.make_node("SequenceConstruct", [], ["t"]), _LEN],
                          "needs at least one input"),
    "at_without_position": ([_SEQ, helper.make_node("SequenceAt", ["s"], ["t"]),
                             helper.make_node("Shape", ["t"], ["n"])], "position) is required"),
    "position_of_floats": ([_SEQ, _sizes("p", 1.0), helper.make_node("SequenceAt", ["s", "p"],
                            ["t"]), helper.make_node("Shape", ["t"], ["n"])],
                           "must be one integer"),
    "position_is_a_sequence": ([_SEQ, helper.make_node("SequenceErase", ["s", "s"], ["t"]),
                                _LEN], "'s') is a sequence, not an integer"),
    "erase_from_empty": ([helper.make_node("SequenceEmpty", [], ["s"]),
                          helper.make_node("SequenceErase", ["s"], ["t"]), _LEN],
                         "cannot erase from an empty sequence"),
    "concat_of_empty": ([helper.make_node("SequenceEmpty", [], ["s"]),
                         helper.make_node("ConcatFromSequence", ["s"], ["t"], axis=0),
                         helper.make_node("Shape", ["t"], ["n"])],
                        "cannot concatenate an empty sequence"),
    "split_of_zero": ([_sizes("k", np.int64(0)),
                       helper.make_node("SplitToSequence", ["a", "k"], ["t"]), _LEN],
                      "scalar split 0 must be positive"),
    "split_negative": ([_sizes("k", np.asarray([3, -1])),
                        helper.make_node("SplitToSequence", ["a", "k"], ["t"]), _LEN],
                       "must not be negative"),
    "split_sizes_do_not_add_up": ([_sizes("k", np.asarray([1, 5])),
                                   helper.make_node("SplitToSequence", ["a", "k"], ["t"]),
                                   _LEN], "do not add up"),
    "split_axis_out_of_range": ([helper.make_node("SplitToSequence", ["a"], ["t"], axis=2),
                                 _LEN], "axis 2 does not fit"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_sequence_nodes_are_clean_errors(name):
    """Each is a GraphError naming the node, never a Python exception from inside."""
    nodes, says = MALFORMED[name]
    with pytest.raises(gd.GraphError) as e:
        gd.from_onnx(_model(nodes, ABC[:1], [("n", TensorProto.INT64, None)]))
    assert "ONNX node #" in str(e.value) and says in str(e.value), str(e.value)
