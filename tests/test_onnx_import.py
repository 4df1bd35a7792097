"""ONNX import: round trips through to_onnx, models written with onnx.helper at old and new
opsets, error messages and symbolic dims. onnxruntime on the ONNX file is the reference."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphdl as gd
from graphdl.onnx.export import ir_version_for
from graphdl.core.types import Sym

F32 = TensorProto.FLOAT
RNG = np.random.default_rng(0)


def ort_run(model: onnx.ModelProto, feeds: dict) -> dict:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def make(nodes, inputs, outputs, inits=(), opset=17, name="m") -> onnx.ModelProto:
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir_version_for(opset)
    return m


def vi(name, shape, dtype=F32):
    return helper.make_tensor_value_info(name, dtype, shape)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def assert_matches_ort(model, feeds, rtol=1e-5, atol=1e-6):
    """Imported graph == onnxruntime on the file, in both graphdl engines."""
    want = ort_run(model, feeds)
    g = gd.from_onnx(model)
    for backend in ("numpy", "ort"):
        got = gd.run(g, feeds, backend=backend)
        assert set(got) == set(want)
        for k in want:
            assert got[k].dtype == want[k].dtype, k
            np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol, err_msg=k)
    return g


# -- round trips through graphdl's own export -------------------------------------------------


def _mlp() -> gd.Graph:
    b = gd.GraphBuilder("mlp")
    x = b.input("x", ["N", 6])
    w1 = b.param("w1", RNG.standard_normal((6, 8)).astype(np.float32))
    b1 = b.param("b1", RNG.standard_normal(8).astype(np.float32))
    w2 = b.param("w2", RNG.standard_normal((8, 3)).astype(np.float32))
    h = gd.elu(gd.leaky_relu(x @ w1 + b1, 0.2), 0.7)
    logits = gd.gemm(gd.tanh(h), w2)
    probs = gd.softmax(logits, -1)
    lse = gd.log_softmax(logits, 1)
    stat = gd.reduce_mean(gd.sigmoid(h), 0) + gd.reduce_max(h, 0) - gd.reduce_sum(h, 0)
    return b.build({"probs": probs, "lse": lse, "stat": stat})


def _shapes() -> gd.Graph:
    b = gd.GraphBuilder("shapes")
    x = b.input("x", ["N", 2, 3])
    y = b.input("y", [4, 3])
    t = gd.transpose(x, (0, 2, 1))
    flat = gd.flatten(t, 1)
    r = gd.reshape(flat, [-1, 3, 2])
    u = gd.unsqueeze(gd.squeeze(gd.unsqueeze(y, [0]), [0]), [1])
    e = gd.expand(u, [4, 2, 3])
    cat = gd.concat([gd.reshape(e, [8, 3]), gd.reshape(x, [-1, 3])], axis=0)
    picked = gd.gather(cat, np.array([0, 2, 2], np.int64), axis=0)
    sl = gd.slice_(r, [0, 1], [2, 3], axes=[1, 2])
    return b.build({"cat": cat, "picked": picked, "sl": sl})


def _elementwise() -> gd.Graph:
    b = gd.GraphBuilder("elementwise")
    x = b.input("x", [5])
    y = b.input("y", [5])
    pos = gd.abs(x) + 0.5
    out1 = gd.where(x < y, gd.sqrt(pos), gd.reciprocal(pos)) ** y
    out2 = gd.maximum(gd.minimum(x, y), gd.neg(gd.sign(y))) / gd.exp(gd.log(pos))
    eq = gd.cast(gd.less_or_equal(x, y), "int64") + gd.cast(gd.greater_or_equal(x, y), "int64")
    return b.build({"out1": out1, "out2": out2, "eq": eq})


@pytest.mark.parametrize("build", [_mlp, _shapes, _elementwise])
def test_round_trip_matches_interpreter_and_ort(build):
    g = build()
    model = gd.to_onnx(g)
    feeds = {v.name: RNG.standard_normal(
        [7 if not isinstance(d, int) else d for d in v.type.shape]).astype(np.float32)
        for v in g.inputs}
    want = gd.run(g, feeds)
    on_file = ort_run(model, feeds)
    g2 = gd.from_onnx(model)
    assert [v.name for v in g2.inputs] == [v.name for v in g.inputs]
    assert [v.name for v in g2.outputs] == [v.name for v in g.outputs]
    assert g2.params.keys() == g.params.keys()
    assert [str(v.type) for v in g2.outputs] == [str(v.type) for v in g.outputs]
    for backend in ("numpy", "ort"):
        got = gd.run(g2, feeds, backend=backend)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)
            np.testing.assert_allclose(got[k], on_file[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_round_trip_from_a_file_keeps_names(tmp_path):
    g = _mlp()
    path = tmp_path / "mlp.onnx"
    onnx.save(gd.to_onnx(g), path)
    g2 = gd.from_onnx(path)
    g3 = gd.from_onnx(str(path))
    assert g2.name == g3.name == "mlp"
    assert [str(v.type) for v in g2.inputs] == ["f32[N,6]"]
    np.testing.assert_array_equal(g2.params["w1"], g.params["w1"])


# -- opset differences ------------------------------------------------------------------------


@pytest.mark.parametrize("opset,axis", [(11, 1), (11, 2), (11, None), (13, 1), (13, None)])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_old_opsets_coerce_to_2d(op, opset, axis):
    """Before opset 13 Softmax normalises over all dims from ``axis`` on (default 1); from 13
    over ``axis`` alone (default -1). The two differ on a 3-D input."""
    attrs = {} if axis is None else {"axis": axis}
    m = make([helper.make_node(op, ["x"], ["y"], **attrs)], [vi("x", [2, 3, 4])],
             [vi("y", None)], opset=opset)
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    out = assert_matches_ort(m, {"x": x})
    if opset == 11 and axis in (1, None):
        assert any(n.op == "flatten" for n in out.nodes)


@pytest.mark.parametrize("opset", [11, 13])
def test_unsqueeze_and_squeeze_axes_attr_or_input(opset):
    axes = init("axes", np.array([0, 3], np.int64))
    if opset < 13:
        nodes = [helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0, 3]),
                 helper.make_node("Squeeze", ["u"], ["s"], axes=[3])]
        inits = []
    else:
        nodes = [helper.make_node("Unsqueeze", ["x", "axes"], ["u"]),
                 helper.make_node("Squeeze", ["u", "ax3"], ["s"])]
        inits = [axes, init("ax3", np.array([3], np.int64))]
    m = make(nodes, [vi("x", ["B", 5])], [vi("u", None), vi("s", None)], inits, opset)
    g = assert_matches_ort(m, {"x": RNG.standard_normal((2, 5)).astype(np.float32)})
    assert [str(v.type) for v in g.outputs] == ["f32[1,B,5,1]", "f32[1,B,5]"]
    assert list(g.params) == []  # axes read at import time leave no int parameter behind


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_mean_axes_attr_or_input(opset, keepdims):
    if opset < 18:
        node = helper.make_node("ReduceMean", ["x"], ["y"], axes=[-1, 1], keepdims=keepdims)
        inits = []
    else:
        node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=keepdims)
        inits = [init("axes", np.array([-1, 1], np.int64))]
    m = make([node], [vi("x", [2, 3, 4])], [vi("y", None)], inits, opset)
    g = assert_matches_ort(m, {"x": RNG.standard_normal((2, 3, 4)).astype(np.float32)})
    assert g.outputs[0].type.shape == ((2, 1, 1) if keepdims else (2,))


def test_reductions_and_variadic_ops():
    nodes = [helper.make_node("ReduceSum", ["x", "ax"], ["s"], keepdims=0),
             helper.make_node("ReduceSum", ["x", "none"], ["s_noop"], noop_with_empty_axes=1),
             helper.make_node("ReduceMax", ["x"], ["mx"], keepdims=1),
             helper.make_node("ReduceL2", ["x", "ax"], ["l2"], keepdims=0),
             helper.make_node("ReduceSumSquare", ["x", "ax"], ["ss"], keepdims=0),
             helper.make_node("Max", ["x", "y", "z"], ["max3"]),
             helper.make_node("Min", ["x", "y"], ["min2"]),
             helper.make_node("Sum", ["x", "y", "z"], ["sum3"]),
             helper.make_node("Mean", ["x", "y"], ["mean2"])]
    m = make(nodes, [vi(n, [3, 4]) for n in "xyz"],
             [vi(n, None) for n in ["s", "s_noop", "mx", "l2", "ss", "max3", "min2", "sum3",
                                    "mean2"]],
             [init("ax", np.array([0], np.int64)), init("none", np.zeros(0, np.int64))], 18)
    assert_matches_ort(m, {n: RNG.standard_normal((3, 4)).astype(np.float32) for n in "xyz"})


def test_constants_clip_gemm_cast_pow_and_shape_arithmetic():
    nodes = [helper.make_node("Constant", [], ["c1"], value_float=0.25),
             helper.make_node("Constant", [], ["c2"], value_floats=[1.0, -2.0, 3.0]),
             helper.make_node("Constant", [], ["c3"], value_ints=[-1, 3]),
             helper.make_node("Constant", [], ["two"], value_int=2),
             helper.make_node("Gemm", ["a", "b", "c2"], ["g"], alpha=0.5, beta=2.0, transA=1),
             helper.make_node("Clip", ["g", "c1", ""], ["clipped"]),
             helper.make_node("Pow", ["g", "two"], ["sq"]),
             helper.make_node("Shape", ["g"], ["shp"], start=1),
             helper.make_node("ConstantOfShape", ["shp"], ["ones"],
                              value=numpy_helper.from_array(np.ones(1, np.float32))),
             helper.make_node("Reshape", ["sq", "c3"], ["r"]),
             helper.make_node("Cast", ["shp"], ["shp_f"], to=F32),
             helper.make_node("Add", ["ones", "shp_f"], ["sum"])]
    m = make(nodes, [vi("a", [4, "M"]), vi("b", [4, 3])],
             [vi(n, None) for n in ["clipped", "sq", "r", "sum"]], opset=17)
    feeds = {"a": RNG.standard_normal((4, 2)).astype(np.float32),
             "b": RNG.standard_normal((4, 3)).astype(np.float32)}
    g = assert_matches_ort(m, feeds)
    assert str(g.by_name["r"].type) == "f32[M,3]"


def test_dropout_range_gather_elements_expand_where():
    nodes = [helper.make_node("Dropout", ["x"], ["d"], ratio=0.5),
             helper.make_node("Range", ["zero", "n", "one"], ["r"]),
             helper.make_node("Cast", ["r"], ["rf"], to=F32),
             helper.make_node("Expand", ["rf", "shp"], ["e"]),
             helper.make_node("Greater", ["d", "e"], ["gt"]),
             helper.make_node("Where", ["gt", "d", "e"], ["w"]),
             helper.make_node("GatherElements", ["w", "idx"], ["ge"], axis=1),
             helper.make_node("Equal", ["idx", "idx"], ["same"])]
    inits = [init("zero", np.array(0, np.int64)), init("n", np.array(4, np.int64)),
             init("one", np.array(1, np.int64)), init("shp", np.array([3, 4], np.int64)),
             init("idx", np.array([[3, 0], [1, 1], [2, 0]], np.int64))]
    outs = [vi("w", None), vi("ge", None), vi("same", None, TensorProto.BOOL)]
    m = make(nodes, [vi("x", [3, 4])], outs, inits, 11)
    g = assert_matches_ort(m, {"x": RNG.standard_normal((3, 4)).astype(np.float32) * 3})
    assert not any(n.op == "dropout" for n in g.nodes)


@pytest.mark.parametrize("backend", ["numpy", "ort"])
def test_dropout_in_training_mode_drops_at_the_ratio(backend):
    """ONNX Dropout with training_mode true: each unit kept with probability 1 - ratio (a mask
    drawn in the graph, new each run) and scaled by 1 / (1 - ratio); the mask output says
    which were kept."""
    m = make([helper.make_node("Dropout", ["x", "ratio", "train"], ["y", "mask"])],
             [vi("x", [100, 200])], [vi("y", None), vi("mask", None, TensorProto.BOOL)],
             [init("ratio", np.array(0.3, np.float32)), init("train", np.array(True))], 13)
    g = gd.from_onnx(m)
    x = RNG.standard_normal((100, 200)).astype(np.float32)
    first = gd.run(g, {"x": x}, backend=backend)
    second = gd.run(g, {"x": x}, backend=backend)
    for out in (first, second):
        assert out["mask"].dtype == np.bool_
        np.testing.assert_allclose(out["y"], np.where(out["mask"], x / np.float32(0.7), 0),
                                   rtol=1e-6)
        assert abs(1.0 - out["mask"].mean() - 0.3) < 0.015  # 20000 draws: sd 0.0032
    assert (first["mask"] != second["mask"]).any()


def test_dropout_training_mode_given_at_run_time_is_refused():
    m = make([helper.make_node("Dropout", ["x", "", "train"], ["y"], name="drop")],
             [vi("x", [2]), vi("train", [], TensorProto.BOOL)], [vi("y", None)], opset=13)
    with pytest.raises(gd.OnnxError, match="'drop'.*training_mode must be known"):
        gd.from_onnx(m)


def test_clip_attrs_before_opset_11():
    m = make([helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.5)], [vi("x", [6])],
             [vi("y", None)], opset=10)
    x = np.linspace(-1, 1, 6).astype(np.float32)
    g = gd.from_onnx(m)
    np.testing.assert_allclose(gd.run(g, {"x": x})["y"], np.clip(x, -0.5, 0.5))


def test_slice_with_steps_matches_ort():
    nodes = [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])]
    inits = [init("st", np.array([-1, 0], np.int64)), init("en", np.array([-100, 5], np.int64)),
             init("ax", np.array([0, 1], np.int64)), init("sp", np.array([-2, 2], np.int64))]
    m = make(nodes, [vi("x", [5, 6])], [vi("y", None)], inits, 13)
    assert_matches_ort(m, {"x": RNG.standard_normal((5, 6)).astype(np.float32)})


def test_initializers_listed_as_inputs_are_parameters():
    """IR version 3 lists every initializer among the graph inputs too."""
    w = RNG.standard_normal((3, 2)).astype(np.float32)
    m = make([helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", [1, 3]), vi("w", [3, 2])],
             [vi("y", None)], [init("w", w)], opset=9)
    m.ir_version = 3
    g = gd.from_onnx(m)
    assert [v.name for v in g.inputs] == ["x"]
    assert list(g.params) == ["w"]
    x = RNG.standard_normal((1, 3)).astype(np.float32)
    np.testing.assert_allclose(gd.run(g, {"x": x})["y"], x @ w, rtol=1e-6)


# -- SoftmaxCrossEntropyLoss ------------------------------------------------------------------


@pytest.mark.parametrize("attrs,weights", [
    ({}, False), ({"reduction": "sum"}, False), ({"ignore_index": -100}, False),
    ({"ignore_index": 1}, False), ({"ignore_index": 2, "reduction": "none"}, True),
    ({}, True), ({"reduction": "sum"}, True)])
def test_softmax_cross_entropy_loss(attrs, weights):
    ins = ["z", "t"] + (["w"] if weights else [])
    node = helper.make_node("SoftmaxCrossEntropyLoss", ins, ["loss", "logp"], **attrs)
    inputs = [vi("z", ["N", 4]), vi("t", ["N"], TensorProto.INT64)]
    inputs += [vi("w", [4])] if weights else []
    m = make([node], inputs, [vi("loss", None), vi("logp", None)], opset=17)
    feeds = {"z": RNG.standard_normal((6, 4)).astype(np.float32),
             "t": np.array([0, 1, 2, 3, 1, 2], np.int64)}
    if weights:
        feeds["w"] = RNG.uniform(0.5, 2, 4).astype(np.float32)
    g = assert_matches_ort(m, feeds)
    plain = not weights and "ignore_index" not in attrs
    assert any(n.op == "softmax_cross_entropy" for n in g.nodes) == plain


@pytest.mark.parametrize("attrs", [{}, {"reduction": "sum"}, {"ignore_index": 0}])
def test_negative_log_likelihood_loss(attrs):
    nodes = [helper.make_node("LogSoftmax", ["z"], ["logp"], axis=1),
             helper.make_node("NegativeLogLikelihoodLoss", ["logp", "t"], ["loss"], **attrs)]
    m = make(nodes, [vi("z", [5, 3]), vi("t", [5], TensorProto.INT64)], [vi("loss", None)])
    assert_matches_ort(m, {"z": RNG.standard_normal((5, 3)).astype(np.float32),
                           "t": np.array([0, 2, 1, 1, 0], np.int64)})


def test_softmax_cross_entropy_rejects_float_targets():
    node = helper.make_node("SoftmaxCrossEntropyLoss", ["z", "t"], ["loss"], name="sce")
    m = make([node], [vi("z", [2, 3]), vi("t", [2, 3])], [vi("loss", None)])
    with pytest.raises(gd.OnnxError, match=r"'sce'.*labels must be int64"):
        gd.from_onnx(m)


# -- errors and symbols -----------------------------------------------------------------------


def test_unsupported_op_names_node_opset_and_supported_ops():
    m = make([helper.make_node("Det", ["x"], ["y"], name="det_7")], [vi("x", [3, 3])],
             [vi("y", None)], opset=16)
    with pytest.raises(gd.OnnxError) as e:
        gd.from_onnx(m)
    msg = str(e.value)
    for part in ("'det_7'", "op Det", "opset 16", "Gemm", "SoftmaxCrossEntropyLoss", "Relu"):
        assert part in msg


def test_non_default_domain_is_refused():
    node = helper.make_node("FusedGemm", ["x", "x"], ["y"], domain="com.microsoft", name="fg")
    m = make([node], [vi("x", [2, 2])], [vi("y", None)])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(gd.OnnxError, match=r"'fg'.*domain 'com.microsoft'"):
        gd.from_onnx(m)


def test_shape_errors_point_at_the_onnx_node():
    m = make([helper.make_node("Add", ["x", "y"], ["z"], name="bad_add")],
             [vi("x", [2, 3]), vi("y", [4])], [vi("z", None)])
    with pytest.raises(gd.ShapeError, match=r"ONNX node 'bad_add' \(op Add\).*broadcast"):
        gd.from_onnx(m)


def test_undefined_value_and_corrupt_file(tmp_path):
    m = make([helper.make_node("Relu", ["nowhere"], ["y"], name="r")], [vi("x", [2])],
             [vi("y", None)])
    with pytest.raises(gd.OnnxError, match=r"'r'.*'nowhere'"):
        gd.from_onnx(m)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\xff\xff garbage")
    with pytest.raises(gd.OnnxError, match="bad.onnx"):
        gd.from_onnx(bad)


def test_symbolic_and_missing_dims_survive_import_and_export():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Relu", ["h"], ["y"]),
             helper.make_node("Flatten", ["z"], ["f"], axis=1)]
    x_vi = helper.make_tensor_value_info("x", F32, ["batch", 3])
    z_vi = helper.make_tensor_value_info("z", F32, ["T", None, 2])
    m = make(nodes, [x_vi, z_vi], [vi("y", None), vi("f", None)],
             [init("w", np.ones((3, 2), np.float32))])
    g = gd.from_onnx(m)
    assert g.inputs[0].type.shape == (Sym.var("batch"), 3)
    assert g.inputs[1].type.shape == (Sym.var("T"), None, 2)
    assert str(g.outputs[0].type) == "f32[batch,2]"
    assert str(g.outputs[1].type) == "f32[T,?]"
    out = gd.to_onnx(g).graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in out] == ["batch", 2]
    feeds = {"x": np.ones((5, 3), np.float32), "z": np.ones((4, 3, 2), np.float32)}
    assert gd.run(g, feeds)["f"].shape == (4, 6)
