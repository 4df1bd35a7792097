"""The element types added for the ONNX backend cases (int16, uint16, uint32, uint64, string),
string_normalizer, float16 range and scatter_reduce, against independent references:
onnx.reference.ReferenceEvaluator, onnxruntime and values derived by hand."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import graphdl as gd
import passes
from graphdl.core.types import STRING_ITEM_BYTES, DType

ORT = pytest.importorskip("onnxruntime")


def words(*ws: str) -> np.ndarray:
    out = np.empty(len(ws), dtype=object)
    out[:] = ws
    return out


def _model(node: onnx.NodeProto, inputs: list, outputs: list, opset: int) -> onnx.ModelProto:
    graph = helper.make_graph([node], "m", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _ort(model: onnx.ModelProto, feeds: dict) -> list:
    sess = ORT.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


# -- dtypes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,np_dtype,code", [
    ("int16", np.int16, TensorProto.INT16), ("uint16", np.uint16, TensorProto.UINT16),
    ("uint32", np.uint32, TensorProto.UINT32), ("uint64", np.uint64, TensorProto.UINT64)])
def test_new_int_dtypes_map_to_numpy_and_onnx(name, np_dtype, code):
    d = DType.of(name)
    assert d.np == np.dtype(np_dtype) and d.onnx == code
    assert DType.of(np.zeros(2, np_dtype)) is d and DType.from_onnx(code) is d
    assert DType.of(d.short) is d and d.itemsize == np.dtype(np_dtype).itemsize


def test_string_dtype_accepts_str_and_object_arrays():
    assert DType.of(np.array(["ab"])) is DType.string
    assert DType.of(words("a")) is DType.string
    assert DType.from_onnx(TensorProto.STRING) is DType.string
    assert DType.string.itemsize == STRING_ITEM_BYTES


@pytest.mark.parametrize("dtype", ["int16", "uint64", "int64"])
def test_integer_div_truncates_exactly_like_onnxruntime(dtype):
    """Large uint64/int64 values (above 2**53) and negative quotients: ORT is the reference."""
    big = np.iinfo(dtype).max - 6
    x = np.array([big, 7, 9, 6], dtype)
    y = np.array([3, 2, 4, 3], dtype)
    if np.dtype(dtype).kind == "i":
        x, y = x * np.array([1, -1, 1, -1], dtype), y * np.array([1, 1, -1, -1], dtype)
    b = gd.GraphBuilder("div")
    xt, yt = b.input("x", [4], dtype), b.input("y", [4], dtype)
    g = b.build({"q": xt / yt})
    want = gd.run(g, {"x": x, "y": y}, backend="ort")["q"]
    np.testing.assert_array_equal(gd.run(g, {"x": x, "y": y})["q"], want)


def test_small_int_reduce_sum_keeps_its_dtype_and_wraps_like_onnxruntime():
    """numpy widens an int16 sum; ONNX keeps int16 (and wraps). ORT runs it through int32
    (graphdl/onnx/coverage.py), whose wrapped low bits are the same."""
    b = gd.GraphBuilder("sum")
    x = b.input("x", [3], "int16")
    g = b.build({"s": gd.reduce_sum(x)})
    feeds = {"x": np.array([30000, 30000, 10], np.int16)}
    ours, theirs = gd.run(g, feeds)["s"], gd.run(g, feeds, backend="ort")["s"]
    assert ours.dtype == np.int16 and ours == theirs == np.int16(60010 - 65536)


def test_neg_refuses_unsigned_types():
    b = gd.GraphBuilder("neg")
    with pytest.raises(gd.DTypeError, match="neg takes signed numbers, got uint32"):
        gd.neg(b.input("x", [2], "uint32"))


# -- string tensors ----------------------------------------------------------------------------


def test_arithmetic_on_strings_names_the_op_and_the_dtype():
    b = gd.GraphBuilder("s")
    x = b.input("x", [2], "string")
    with pytest.raises(gd.DTypeError, match=r"add .*input 0 has dtype string"):
        x + x
    with pytest.raises(gd.DTypeError, match=r"reduce_sum .*dtype string"):
        gd.reduce_sum(x)
    with pytest.raises(gd.DTypeError, match=r"cast .*dtype string"):
        gd.cast(x, "float32")


def test_string_equal_broadcasts_like_the_reference():
    x, y = words("a", "bc", "", "bc").reshape(2, 2), words("a", "bc")
    b = gd.GraphBuilder("eq")
    g = b.build({"e": b.input("x", [2, 2], "string").eq(b.input("y", [2], "string"))})
    got = gd.run(g, {"x": x, "y": y})["e"]
    np.testing.assert_array_equal(got, [[True, True], [False, True]])
    np.testing.assert_array_equal(got, gd.run(g, {"x": x, "y": y}, backend="ort")["e"])


def test_grad_refuses_a_string_wrt_and_ignores_string_branches():
    b = gd.GraphBuilder("g")
    s = b.input("s", [3], "string")
    w = b.param("w", np.array([1.0, 2.0, 3.0]))
    keep = gd.cast(s.eq(b.const(words("a", "a", "a"))), "float64")
    g = b.build({"loss": gd.reduce_sum(w * w * keep), "n": gd.string_normalizer(s, ["a"])})
    with pytest.raises(gd.GradError, match="w.r.t. %s of dtype string"):
        passes.grad(g, "loss", ["s"])
    gg = passes.grad(g, "loss", ["w"])
    out = gd.run(gg, {"s": words("a", "b", "a")})
    np.testing.assert_array_equal(out["w_grad"], [2.0, 0.0, 6.0])  # d sum(w^2 keep) = 2 w keep
    np.testing.assert_array_equal(out["n"], words("b"))


def test_memory_budget_counts_strings_by_the_estimate():
    b = gd.GraphBuilder("big")
    x = b.input("x", [1000, 1000], "string")
    g = b.build({"y": gd.identity(x)})
    from graphdl.core.limits import ResourceLimitError, check_graph

    check_graph(g, max_bytes=STRING_ITEM_BYTES * 10**6)
    with pytest.raises(ResourceLimitError, match="1000, 1000"):
        check_graph(g, max_bytes=STRING_ITEM_BYTES * 10**6 - 1)


def test_string_initializers_import_and_raw_data_strings_are_refused():
    init = numpy_helper.from_array(words("x", "yy"), "c")
    node = helper.make_node("Equal", ["a", "c"], ["e"])
    model = _model(node, [helper.make_tensor_value_info("a", TensorProto.STRING, [2])],
                   [helper.make_tensor_value_info("e", TensorProto.BOOL, [2])], 19)
    model.graph.initializer.append(init)
    got = gd.run(gd.from_onnx(model), {"a": words("x", "y")})["e"]
    np.testing.assert_array_equal(got, [True, False])
    bad = TensorProto(name="c", data_type=TensorProto.STRING, dims=[2], raw_data=b"xyy")
    del model.graph.initializer[:]
    model.graph.initializer.append(bad)
    with pytest.raises(gd.OnnxError, match="string_data, not raw_data"):
        gd.from_onnx(model)


# -- string_normalizer ---------------------------------------------------------------------------

#: (attrs, input shape, whether onnx.reference follows the spec there): its StringNormalizer
#: compares stopwords case-insensitively only when case_change_action is LOWER or UPPER
#: (onnx 1.23), while the spec and onnxruntime do whenever is_case_sensitive is 0
NORMALIZER_CASES = [
    ({"stopwords": ["monday"], "case_change_action": "LOWER"}, [5], True),
    ({"stopwords": ["monday"], "is_case_sensitive": 1, "case_change_action": "UPPER"}, [5], True),
    ({"case_change_action": "UPPER"}, [1, 5], True),
    ({"stopwords": ["Tuesday", "monday"]}, [1, 5], False),
    ({"stopwords": ["monday", "tuesday", "wednesday"], "case_change_action": "LOWER"}, [5],
     True),
    ({"stopwords": ["monday", "tuesday", "wednesday"], "is_case_sensitive": 0}, [1, 5], False),
    ({"stopwords": ["Tuesday", "monday"], "case_change_action": "UPPER"}, [5], True),
]


@pytest.mark.parametrize("attrs,shape,reference_follows_spec", NORMALIZER_CASES)
def test_string_normalizer_matches_onnxruntime_and_the_onnx_reference(
        attrs, shape, reference_follows_spec):
    """onnxruntime runs the ONNX model itself (with a locale it can load) and graphdl's export
    of the imported graph; onnx.reference where it follows the spec."""
    x = words("monday", "tuesday", "MONDAY", "Tuesday", "wednesday").reshape(shape)
    node = helper.make_node("StringNormalizer", ["x"], ["y"], locale="C.UTF-8", **attrs)
    model = _model(node, [helper.make_tensor_value_info("x", TensorProto.STRING, shape)],
                   [helper.make_tensor_value_info("y", TensorProto.STRING, None)], 10)
    want = _ort(model, {"x": x})[0]
    g = gd.from_onnx(model)
    got = gd.run(g, {"x": x})["y"]
    np.testing.assert_array_equal(got, want)
    assert got.shape == want.shape and got.dtype == object
    np.testing.assert_array_equal(gd.run(g, {"x": x}, backend="ort")["y"], want)
    if reference_follows_spec:
        np.testing.assert_array_equal(got, ReferenceEvaluator(model).run(None, {"x": x})[0])


def test_string_normalizer_empty_output_and_shapes_by_hand():
    b = gd.GraphBuilder("n")
    x1, x2 = b.input("x1", [3], "string"), b.input("x2", [1, "C"], "string")
    y1 = gd.string_normalizer(x1, ["a", "B"])
    y2 = gd.string_normalizer(x2, ["a", "b"], case_change_action="UPPER")
    y3 = gd.string_normalizer(x1, case_change_action="LOWER")
    assert y1.shape == (None,) and y2.shape == (1, None)  # data-dependent lengths
    assert y3.shape == (3,)  # no stopwords: nothing removed
    g = b.build({"y1": y1, "y2": y2, "y3": y3})
    out = gd.run(g, {"x1": words("A", "b", "a"), "x2": words("a", "c", "B").reshape(1, 3)})
    assert out["y1"].shape == (1,) and out["y1"][0] == ""
    np.testing.assert_array_equal(out["y2"], words("C").reshape(1, 1))
    np.testing.assert_array_equal(out["y3"], words("a", "b", "a"))


def test_string_normalizer_rejects_other_ranks_and_numbers():
    b = gd.GraphBuilder("n")
    with pytest.raises(gd.ShapeError, match=r"\[C\] or \[1, C\].*\[2,3\]"):
        gd.string_normalizer(b.input("x", [2, 3], "string"))
    with pytest.raises(gd.DTypeError, match="string_normalizer .*float32"):
        gd.string_normalizer(b.input("f", [3], "float32"))


# -- range in float16, scatter_reduce ------------------------------------------------------------


def test_float16_range_matches_the_reference_in_both_engines():
    start, limit, delta = (np.array(v, np.float16) for v in (1.5, 7.25, 0.75))
    b = gd.GraphBuilder("r")
    ins = [b.input(n, [], "float16") for n in ("s", "l", "d")]
    g = b.build({"y": gd.arange(*ins)})
    feeds = {"s": start, "l": limit, "d": delta}
    node = helper.make_node("Range", ["s", "l", "d"], ["y"])
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT16, []) for n in ("s", "l", "d")]
    ref = _model(node, vi, [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)], 11)
    want = ReferenceEvaluator(ref).run(None, feeds)[0]
    for backend in ("numpy", "ort"):
        got = gd.run(g, feeds, backend=backend)["y"]
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, want)


SCATTER_IDX = np.array([[1, 0], [1, -1], [0, 1]], np.int64)


@pytest.mark.parametrize("reduction", ["mul", "max", "min"])
def test_scatter_reduce_matches_the_reference_with_repeated_indices(reduction):
    rng = np.random.default_rng(0)
    data, upd = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    node = helper.make_node("ScatterElements", ["d", "i", "u"], ["y"], axis=0,
                            reduction=reduction)
    vi = [helper.make_tensor_value_info("d", TensorProto.DOUBLE, [3, 2]),
          helper.make_tensor_value_info("i", TensorProto.INT64, [3, 2]),
          helper.make_tensor_value_info("u", TensorProto.DOUBLE, [3, 2])]
    model = _model(node, vi, [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [3, 2])],
                   18)
    feeds = {"d": data, "i": SCATTER_IDX, "u": upd}
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    g = gd.from_onnx(model)
    np.testing.assert_allclose(gd.run(g, feeds)["y"], want, rtol=1e-12)
    np.testing.assert_allclose(gd.run(g, feeds, backend="ort")["y"], want, rtol=1e-12)


def test_scatter_reduce_gradients_and_refusals():
    def inputs():
        b = gd.GraphBuilder("s")
        return b, b.input("d", [3, 2], "float64"), b.const(SCATTER_IDX), \
            b.input("u", [3, 2], "float64")

    b, d, i, u = inputs()
    loss = gd.reduce_sum(gd.scatter_reduce(d, i, u, 0, "mul"))
    with pytest.raises(gd.GradError, match=r"reduction='mul'.* not differentiable"):
        passes.grad(b.build({"loss": loss}), "loss", ["d"])
    b, d, i, u = inputs()
    top = gd.scatter_reduce(d, i, u, 0, "max")
    with pytest.raises(gd.OnnxError, match="reduction 'max' needs opset >= 18"):
        gd.to_onnx(b.build({"y": top}), opset=17)
    # by hand: the gradient of sum(max-scatter) is 1 on each element that won its position
    data = np.array([[0.0, 5.0], [1.0, 0.0], [9.0, 9.0]])
    upd = np.array([[2.0, 1.0], [3.0, -1.0], [-4.0, 7.0]])
    g = passes.grad(b.build({"loss": gd.reduce_sum(top)}), "loss", ["d", "u"])
    out = gd.run(g, {"d": data, "u": upd})
    np.testing.assert_array_equal(out["d_grad"], [[1, 1], [0, 0], [1, 1]])
    np.testing.assert_array_equal(out["u_grad"], [[0, 0], [1, 0], [0, 1]])


def test_an_object_array_of_non_strings_is_no_string_tensor():
    with pytest.raises(gd.DTypeError, match="only if every element is a str"):
        DType.of(np.array([1.5, "a"], dtype=object))
