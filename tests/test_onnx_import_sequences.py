"""ONNX sequence ops imported as static sequences (graphdl/onnx/importers/sequence.py), and
sequence graph inputs and outputs (graphdl/onnx/boundary.py): small models built with
onnx.helper, run through ``from_onnx`` and graphdl's interpreter, checked against
``onnx.reference.ReferenceEvaluator`` (and onnxruntime); and the models graphdl must refuse,
each with an OnnxError naming the node or value and the reason."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import graphdl as gd
import passes
from graphdl.core.errors import OnnxError
from tests.onnx_models import make_model, matches_reference, spread

F = TensorProto.FLOAT
RNG = np.random.default_rng(0)


def _pos(name: str, value: int) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name, TensorProto.INT64, [], [value]))


def _abc(names: str = "abc") -> dict:
    return {k: RNG.standard_normal((2, 3)).astype(np.float32) for k in names}


ABC = [(k, F, [2, 3]) for k in "abc"]


@pytest.mark.parametrize("pos", [0, 1, 2, -1, -2, -3])
def test_sequence_at_any_position(pos):
    nodes = [helper.make_node("SequenceConstruct", ["a", "b", "c"], ["s"]), _pos("p", pos),
             helper.make_node("SequenceAt", ["s", "p"], ["y"])]
    matches_reference(make_model(nodes, ABC, [("y", F, None)]), _abc())


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
    model = make_model(nodes, ABC, [("y", F, None), ("n", TensorProto.INT64, [])])
    got = matches_reference(model, _abc(), "onnx" if pos != 2 else "onnxruntime")
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
    matches_reference(make_model(nodes, ABC, [("y", F, None), ("n", TensorProto.INT64, [])]),
                       _abc())


def test_empty_sequence_built_up_by_inserts():
    nodes = [helper.make_node("SequenceEmpty", [], ["s0"], dtype=F),
             helper.make_node("SequenceInsert", ["s0", "a"], ["s1"]),
             _pos("p", 0),
             helper.make_node("SequenceInsert", ["s1", "b", "p"], ["s2"]),
             helper.make_node("ConcatFromSequence", ["s2"], ["y"], axis=-1)]
    matches_reference(make_model(nodes, ABC[:2], [("y", F, None)]), _abc("ab"))


@pytest.mark.parametrize("axis,new_axis", [(0, 0), (1, 0), (-1, 0), (0, 1), (2, 1), (-1, 1),
                                           (-3, 1)])
def test_concat_from_sequence(axis, new_axis):
    nodes = [helper.make_node("SequenceConstruct", ["a", "b", "c"], ["s"]),
             helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=axis, new_axis=new_axis)]
    matches_reference(make_model(nodes, ABC, [("y", F, None)]), _abc())


@pytest.mark.parametrize("axis,new_axis", [(1, 0), (-3, 1)])
def test_concat_of_one_element(axis, new_axis):
    nodes = [helper.make_node("SequenceConstruct", ["a"], ["s"]),
             helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=axis, new_axis=new_axis)]
    matches_reference(make_model(nodes, ABC[:1], [("y", F, None)]), _abc("a"))


def test_identity_passes_a_sequence_through():
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s"]),
             helper.make_node("Identity", ["s"], ["t"]),
             _pos("p", 1),
             helper.make_node("SequenceAt", ["t", "p"], ["y"])]
    matches_reference(make_model(nodes, ABC[:2], [("y", F, None)]), _abc("ab"))


def _split_model(attrs: dict, split: np.ndarray | None, x_shape: list) -> onnx.ModelProto:
    """SplitToSequence of x; every piece is an output, and the count too."""
    ins = ["x"] + ([] if split is None else ["split"])
    want = ReferenceEvaluator(make_model(
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
    return make_model(nodes, [("x", F, x_shape)], outs,
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
    matches_reference(_split_model(attrs, split, [3, 7]), {"x": _x([3, 7])})


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
    return make_model(nodes, inputs, outs)


@pytest.mark.parametrize("sizes,n", [([1, 2, 3], 6), ([4, 0, 1], 5), ([0, 0, 2], 2)])
def test_split_to_sequence_with_run_time_sizes(sizes, n):
    model = _runtime_split_model()
    graph = gd.from_onnx(model)
    (last,) = [v for v in graph.outputs if v.name == "last"]
    assert last.type.shape[0] == 2 and not isinstance(last.type.shape[1], int)
    feeds = {"x": _x([2, n]), "sizes": np.asarray(sizes, np.int64)}
    got = matches_reference(model, feeds)
    assert got["n"] == 3
    ort = gd.run(graph, feeds, backend="ort")  # the slices export as standard ONNX
    np.testing.assert_array_equal(ort["last"], got["last"])


def test_split_pieces_are_made_only_when_used():
    """A split sequence only counted adds no node (its pieces are made on first use); one
    read by SequenceAt adds the one split."""
    count = [helper.make_node("SplitToSequence", ["x"], ["s"]),
             helper.make_node("SequenceLength", ["s"], ["n"])]
    g = gd.from_onnx(make_model(count, [("x", F, [4, 2])], [("n", TensorProto.INT64, [])]))
    assert [n.op for n in g.nodes] == ["constant"]
    read = count[:1] + [_pos("p", 3), helper.make_node("SequenceAt", ["s", "p"], ["y"])]
    g = gd.from_onnx(make_model(read, [("x", F, [4, 2])], [("y", F, None)]))
    assert [n.op for n in g.nodes] == ["split"]


def test_gradient_flows_through_run_time_split():
    """d/dx sum(w * last piece) is w on the last piece's positions, zero elsewhere."""
    nodes = [helper.make_node("SplitToSequence", ["x", "sizes"], ["s"]), _pos("p", 1),
             helper.make_node("SequenceAt", ["s", "p"], ["piece"]),
             helper.make_node("Mul", ["piece", "w"], ["prod"]),
             helper.make_node("ReduceSum", ["prod"], ["loss"], keepdims=0)]
    model = make_model(nodes, [("x", F, ["n"]), ("sizes", TensorProto.INT64, [2]), ("w", F, [3])],
                   [("loss", F, [])])
    grad = passes.grad(gd.from_onnx(model), "loss", ["x"])
    w = np.asarray([1.5, -2.0, 3.0], np.float32)
    got = gd.run(grad, {"x": _x([5]), "sizes": np.asarray([2, 3], np.int64), "w": w})
    np.testing.assert_array_equal(got["x_grad"], np.concatenate([np.zeros(2, np.float32), w]))


# -- sequence graph inputs and outputs --------------------------------------------------------


def _widths(*widths: int) -> list[np.ndarray]:
    return [RNG.standard_normal((2, w)).astype(np.float32) for w in widths]


def _reader_model() -> onnx.ModelProto:
    """A sequence input read by SequenceAt (from the front and the back), ConcatFromSequence
    and SequenceLength."""
    nodes = [_pos("p", 1), _pos("q", -1),
             helper.make_node("SequenceAt", ["xs", "p"], ["second"]),
             helper.make_node("SequenceAt", ["xs", "q"], ["last"]),
             helper.make_node("ConcatFromSequence", ["xs"], ["cat"], axis=1),
             helper.make_node("SequenceLength", ["xs"], ["n"])]
    outs = [("second", F, [2, None]), ("last", F, [2, None]), ("cat", F, [2, None]),
            ("n", TensorProto.INT64, [])]
    return make_model(nodes, [helper.make_tensor_sequence_value_info("xs", F, [2, None])], outs)


@pytest.mark.parametrize("ref", ["onnx", "onnxruntime"])
def test_sequence_input_of_length_3(ref):
    """Three elements of different widths, fed to graphdl as the tensor inputs xs.0 .. xs.2."""
    model, xs = _reader_model(), _widths(1, 2, 3)
    got = matches_reference(model, {"xs": xs}, ref)
    assert got["n"] == 3
    graph = gd.from_onnx(model, sequence_lengths={"xs": 3})
    assert [(v.name, str(v.type)) for v in graph.inputs] == [
        ("xs.0", "f32[2,?]"), ("xs.1", "f32[2,?]"), ("xs.2", "f32[2,?]")]
    assert json.loads(graph.metadata["graphdl.sequence_inputs"]) == {
        "xs": ["xs.0", "xs.1", "xs.2"]}
    exported = gd.run(graph, spread({"xs": xs})[0], backend="ort")  # xs.k export as they are
    np.testing.assert_array_equal(exported["cat"], got["cat"])


def _writer_model() -> onnx.ModelProto:
    """A sequence input passed on with one element erased and one inserted in front."""
    nodes = [_pos("p", 0), _pos("q", 1),
             helper.make_node("SequenceErase", ["xs", "q"], ["erased"]),
             helper.make_node("SequenceInsert", ["erased", "a", "p"], ["ys"])]
    seq = helper.make_tensor_sequence_value_info
    return make_model(nodes, [seq("xs", F, [2, None]), ("a", F, [2, 3])],
                      [seq("ys", F, [2, None]), seq("erased", F, None)])


@pytest.mark.parametrize("ref", ["onnx", "onnxruntime"])
def test_sequence_outputs_become_tensor_outputs(ref):
    model = _writer_model()
    matches_reference(model, {"xs": _widths(1, 2, 4), "a": _x([2, 3])}, ref)
    graph = gd.from_onnx(model, sequence_lengths={"xs": 3})
    assert [v.name for v in graph.outputs] == ["ys.0", "ys.1", "ys.2", "erased.0", "erased.1"]
    assert json.loads(graph.metadata["graphdl.sequence_outputs"]) == {
        "ys": ["ys.0", "ys.1", "ys.2"], "erased": ["erased.0", "erased.1"]}


def test_empty_sequence_input():
    """Length 0: no tensor input, and an empty sequence output has no tensor output."""
    nodes = [helper.make_node("SequenceLength", ["xs"], ["n"]),
             helper.make_node("Identity", ["xs"], ["ys"])]
    seq = helper.make_tensor_sequence_value_info
    model = make_model(nodes, [seq("xs", F, [2])], [("n", TensorProto.INT64, []),
                                                     seq("ys", F, [2])])
    graph = gd.from_onnx(model, sequence_lengths={"xs": 0})
    assert graph.inputs == () and [v.name for v in graph.outputs] == ["n"]
    assert matches_reference(model, {"xs": []})["n"] == 0


def test_gradient_reaches_a_sequence_input_element():
    """d/d xs.k of sum(w * concat(xs)) is w's slice over element k's columns."""
    nodes = [helper.make_node("ConcatFromSequence", ["xs"], ["cat"], axis=1),
             helper.make_node("Mul", ["cat", "w"], ["prod"]),
             helper.make_node("ReduceSum", ["prod"], ["loss"], keepdims=0)]
    model = make_model(nodes, [helper.make_tensor_sequence_value_info("xs", F, [2, None]),
                               ("w", F, [2, 5])], [("loss", F, [])])
    graph = gd.from_onnx(model, sequence_lengths={"xs": 2})
    grad = passes.grad(graph, "loss", ["xs.0", "xs.1"])
    xs, w = _widths(2, 3), _x([2, 5])
    got = gd.run(grad, {"xs.0": xs[0], "xs.1": xs[1], "w": w})
    np.testing.assert_array_equal(got["xs.0_grad"], w[:, :2])
    np.testing.assert_array_equal(got["xs.1_grad"], w[:, 2:])


def test_command_line_takes_sequence_lengths(tmp_path, capsys):
    """``--sequence-length xs=3``: inspect lists the element inputs, run feeds them."""
    from graphdl.tools.cli import main

    path, xs = tmp_path / "reader.onnx", _widths(3, 1, 2)
    onnx.save(_reader_model(), path)
    assert main(["inspect", str(path), "--sequence-length", "xs=3"]) == 0
    assert "sequence input 'xs' as tensors: xs.0, xs.1, xs.2" in capsys.readouterr().out
    feeds = []
    for k, x in enumerate(xs):
        np.save(tmp_path / f"x{k}.npy", x)
        feeds += ["--feed", f"xs.{k}={tmp_path / f'x{k}.npy'}"]
    out = tmp_path / "out.npz"
    assert main(["run", str(path), "--sequence-length", "xs=3", *feeds, "-o", str(out)]) == 0
    want = ReferenceEvaluator(_reader_model()).run(["cat"], {"xs": xs})[0]
    np.testing.assert_array_equal(np.load(out)["cat"], want)
    assert main(["inspect", str(path)]) == 2
    assert "--sequence-length xs=N" in capsys.readouterr().err
    assert main(["inspect", str(path), "--sequence-length", "xs=three"]) == 2
    assert "expected NAME=N" in capsys.readouterr().err


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
    model = make_model(nodes, ABC[:2] + [("p", TensorProto.INT64, [])], [("y", F, None)])
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
    _refused(make_model(nodes, ABC[:2], [out]), f"'bad' (op {op})", f"position {pos} is out of "
             "range for a sequence of length 2")


def test_sequence_input_without_length_is_refused():
    seq_in = helper.make_tensor_sequence_value_info("s", F, None)
    nodes = [helper.make_node("SequenceLength", ["s"], ["n"], name="count")]
    _refused(make_model(nodes, [seq_in], [("n", TensorProto.INT64, [])]), "graph input 's'",
             "'count' (op SequenceLength)", "sequence_lengths={'s': n}", "s.0 ... s.(n-1)")


@pytest.mark.parametrize("options,says", [
    ({"sequence_lengths": {"a": 2}}, "names 'a', which is no sequence graph input; those are "
                                     "['s']"),
    ({"sequence_lengths": {"s": -1}}, "sequence_lengths['s'] must be a count"),
    ({"sequence_lengths": {"s": 2.0}}, "must be a count (an int >= 0), not 2.0"),
    ({"sequence_lengths": {"s": 1}, "absent_inputs": ["s"]}, "no optional graph input"),
])
def test_bad_boundary_options_are_refused(options, says):
    seq_in = helper.make_tensor_sequence_value_info("s", F, None)
    nodes = [helper.make_node("SequenceLength", ["s"], ["n"]), helper.make_node("Relu", ["a"],
                                                                               ["r"])]
    model = make_model(nodes, [seq_in, ABC[0]], [("n", TensorProto.INT64, []), ("r", F, None)])
    with pytest.raises(OnnxError) as e:
        gd.from_onnx(model, **options)
    assert says in str(e.value), str(e.value)


def test_element_name_taken_by_a_model_value_is_refused():
    seq_in = helper.make_tensor_sequence_value_info("s", F, None)
    nodes = [helper.make_node("Relu", ["a"], ["s.1"]),
             helper.make_node("SequenceInsert", ["s", "s.1"], ["t"]),
             helper.make_node("SequenceLength", ["t"], ["n"])]
    model = make_model(nodes, [seq_in, ABC[0]], [("n", TensorProto.INT64, [])])
    with pytest.raises(OnnxError, match="'s.1': the model already has a value of that name"):
        gd.from_onnx(model, sequence_lengths={"s": 2})


@pytest.mark.parametrize("declared,says", [
    (helper.make_tensor_value_info("s", F, None), "declared a tensor but is a sequence"),
    (helper.make_tensor_sequence_value_info("s", TensorProto.INT64, None),
     "declared a sequence of int64 but holds float32 tensors"),
])
def test_sequence_output_must_fit_its_declared_type(declared, says):
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s"], name="build")]
    _refused(make_model(nodes, ABC[:2], [declared]), "graph output 's'", says)


def test_tensor_op_reading_a_sequence_is_refused():
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s"], name="build"),
             helper.make_node("Relu", ["s"], ["y"], name="act")]
    _refused(make_model(nodes, ABC[:2], [("y", F, None)]), "'act' (op Relu)", "'s', a sequence",
             "'build' (op SequenceConstruct)")


def test_sequence_op_reading_a_tensor_is_refused():
    nodes = [helper.make_node("SequenceLength", ["a"], ["n"], name="count")]
    _refused(make_model(nodes, ABC[:1], [("n", TensorProto.INT64, [])]),
             "'count' (op SequenceLength)", "'a') is a tensor")


def test_mixed_element_types_are_refused():
    nodes = [helper.make_node("SequenceConstruct", ["a", "i"], ["s"], name="build"),
             helper.make_node("SequenceLength", ["s"], ["n"])]
    _refused(make_model(nodes, [ABC[0], ("i", TensorProto.INT64, [2])],
                    [("n", TensorProto.INT64, [])]), "'build'", "float32", "int64")


def test_value_info_of_sequence_type_is_accepted():
    """Shape inference records sequence types in value_info; the importer reads past them."""
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s"]), _pos("p", 0),
             helper.make_node("SequenceAt", ["s", "p"], ["y"])]
    model = onnx.shape_inference.infer_shapes(make_model(nodes, ABC[:2], [("y", F, None)]))
    assert any(v.type.HasField("sequence_type") for v in model.graph.value_info)
    matches_reference(model, _abc("ab"))


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
        gd.from_onnx(make_model(nodes, ABC[:1], [("n", TensorProto.INT64, None)]))
    assert "ONNX node #" in str(e.value) and says in str(e.value), str(e.value)
