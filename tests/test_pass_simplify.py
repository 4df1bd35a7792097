"""Algebraic simplification: golden printed IR after each rule, and the same numbers as the
unsimplified graph in the interpreter and in onnxruntime on random feeds."""
import numpy as np

import graphdl as gd
from graphdl.core.ir import Graph
from passes import DeadCodeElimination, PassManager, Simplify


def _simplify(g: Graph) -> Graph:
    return PassManager([Simplify(), DeadCodeElimination()]).run(g).graph


def _same_numbers(g: Graph, out: Graph, feeds: dict) -> None:
    want = gd.run(g, feeds, backend="ort")  # the unsimplified graph, in the other engine
    for engine in ("numpy", "ort"):
        got = gd.run(out, feeds, backend=engine)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-7, err_msg=k)


def _randn(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def test_neutral_elements_double_neg_transpose_cast_reshape_chain():
    b = gd.GraphBuilder("s")
    x, w = b.input("x", ["N", 4]), b.input("w", [4])
    y = gd.neg(gd.neg(x)) * 1.0 + 0.0 - 0.0
    y = gd.transpose(gd.transpose(y)) / 1.0
    z = gd.cast(gd.cast(y, "float64"), "float32")
    r = gd.reshape(gd.reshape(z, [-1, 2, 2]), [-1, 4])
    g = b.build({"y": gd.tanh(r) + w * 1.0})
    out = _simplify(g)
    assert str(out) == """graph s(
    %x:f32[N,4],
    %w:f32[4],
) {
  %tanh_17:f32[N,4] = tanh(%x)
  %y:f32[N,4] = add(%tanh_17, %w)
  return %y
}"""
    _same_numbers(g, out, {"x": _randn(5, 4), "w": _randn(4)})


def test_rules_that_must_not_fire():
    """A permutation that does not cancel is composed; a lossy double cast stays; an x + 0
    that broadcasts x to a bigger shape stays."""
    b = gd.GraphBuilder("t")
    x = b.input("x", ["N", 2, 3])
    t = gd.transpose(gd.transpose(x, [1, 0, 2]), [0, 2, 1])
    g = b.build({"y": gd.exp(t), "keep": gd.cast(gd.cast(x, "int32"), "float32"),
                 "grow": x + b.const(np.zeros((4, 1, 1), np.float32))})
    out = _simplify(g)
    assert str(out) == """graph t(
    %x:f32[N,2,3],
) {
  %transpose_2:f32[2,3,N] = transpose(%x, perm=(1, 2, 0))
  %y:f32[2,3,N] = exp(%transpose_2)
  %cast_4:i32[N,2,3] = cast(%x, to='int32')
  %keep:f32[N,2,3] = cast(%cast_4, to='float32')
  %constant_6:f32[4,1,1] = constant(value=float32[4, 1, 1][0.0, 0.0, 0.0, 0.0])
  %grow:f32[4,2,3] = add(%x, %constant_6)
  return %y, %keep, %grow
}"""
    xv = (_randn(4, 2, 3) * 3).astype(np.float32)
    _same_numbers(g, out, {"x": xv})
    got = gd.run(out, {"x": xv})["keep"]
    np.testing.assert_array_equal(got, np.trunc(xv))  # the int32 round trip truncates


def test_shape_of_static_dims_folds_and_symbolic_dims_stay():
    b = gd.GraphBuilder("shape")
    x = b.input("x", ["N", 3, 4])
    g = b.build({"static": gd.shape(x, 1), "sym": gd.shape(x, 0, 2)})
    out = _simplify(g)
    assert str(out) == """graph shape(
    %x:f32[N,3,4],
) {
  %static:i64[2] = constant(value=int64[2][3, 4])
  %sym:i64[2] = shape(%x, end=2, start=0)
  return %static, %sym
}"""
    for n in (2, 7):
        got = gd.run(out, {"x": np.zeros((n, 3, 4), np.float32)})
        assert got["static"].tolist() == [3, 4] and got["sym"].tolist() == [n, 3]


def test_graph_outputs_keep_their_names():
    b = gd.GraphBuilder("o")
    x = b.input("x", [3])
    g = b.build({"y": x * 1.0})
    out = _simplify(g)
    assert [v.name for v in out.outputs] == ["y"] and [n.op for n in out.nodes] == ["constant",
                                                                                    "mul"]
