"""Common-subexpression elimination and constant folding: golden IR after the pass, and the
same numbers as before it."""
import numpy as np
import pytest

import graphdl as gd
from passes import CommonSubexpressionElimination, ConstantFolding, DeadCodeElimination
from passes import PassManager


def _run(passes_, g):
    return PassManager(passes_ + [DeadCodeElimination()]).run(g).graph


def test_cse_merges_equal_nodes_commutative_operands_in_either_order():
    b = gd.GraphBuilder("cse")
    x, y = b.input("x", ["N", 3]), b.input("y", ["N", 3])
    a1, a2 = gd.exp(x) + y, y + gd.exp(x)
    g = b.build({"o": a1 * a2, "s": gd.reduce_sum(x, 1), "t": gd.reduce_sum(x, 0)})
    out = _run([CommonSubexpressionElimination()], g)
    assert str(out) == """graph cse(
    %x:f32[N,3],
    %y:f32[N,3],
) {
  %exp_1:f32[N,3] = exp(%x)
  %add_2:f32[N,3] = add(%exp_1, %y)
  %o:f32[N,3] = mul(%add_2, %add_2)
  %s:f32[N] = reduce_sum(%x, axes=(1,), keepdims=False)
  %t:f32[3] = reduce_sum(%x, axes=(0,), keepdims=False)
  return %o, %s, %t
}"""
    rng = np.random.default_rng(0)
    feeds = {k: rng.standard_normal((4, 3)).astype(np.float32) for k in "xy"}
    want = gd.run(g, feeds, backend="ort")
    got = gd.run(out, feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6)


def test_cse_keeps_non_commutative_operand_order_apart():
    b = gd.GraphBuilder("sub")
    x, y = b.input("x", [3]), b.input("y", [3])
    g = b.build({"o": (x - y) * (y - x)})
    out = _run([CommonSubexpressionElimination()], g)
    assert [n.op for n in out.nodes] == ["sub", "sub", "mul"]


def _fold_graph():
    b = gd.GraphBuilder("cf")
    x = b.input("x", ["N", 3])
    c = b.const(np.arange(3, dtype=np.float32))
    big = b.const(np.ones((40, 40), np.float32))
    return b.build({"o": x * (gd.exp(c) * 2.0 + 1.0), "p": gd.reduce_sum(big * 2.0, 0)})


def test_constant_folding_evaluates_small_constant_subgraphs_once():
    g = _fold_graph()
    out = _run([ConstantFolding(max_elements=1024)], g)
    ops = [n.op for n in out.nodes]
    assert ops == ["constant", "constant", "constant", "mul", "mul", "reduce_sum"]
    folded = out.producers[out.nodes[3].inputs[1]]
    np.testing.assert_allclose(folded.attrs["value"], np.exp(np.arange(3.0)) * 2 + 1, rtol=1e-6)


def test_constant_folding_size_limit():
    """The 40x40 product (1600 elements) folds only under a limit that admits it."""
    g = _fold_graph()
    small = _run([ConstantFolding(max_elements=1024)], g)
    large = _run([ConstantFolding(max_elements=2000)], g)
    assert "reduce_sum" in [n.op for n in small.nodes]
    assert [n.op for n in large.nodes] == ["constant", "mul", "constant"]
    np.testing.assert_array_equal(gd.run(large, {"x": np.zeros((1, 3), np.float32)})["p"],
                                  np.full(40, 80.0, np.float32))


def test_constant_folding_leaves_a_failing_node_for_run_time():
    """A kernel that fails on its constants is not folded: the engine reports it, naming the
    node, when the graph runs."""
    b = gd.GraphBuilder("bad")
    x = b.input("x", [])
    logits = b.const(np.zeros((1, 3), np.float32))
    bad = gd.softmax_cross_entropy(logits, b.const(np.array([5], np.int64)))  # label >= 3
    g = b.build({"y": x + bad})
    out = _run([ConstantFolding()], g)
    assert "softmax_cross_entropy" in [n.op for n in out.nodes]
    with pytest.raises(gd.GraphError, match=r"labels must lie in \[0, 3\), got values 5"):
        gd.run(out, {"x": np.zeros((), np.float32)})
