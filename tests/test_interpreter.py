"""The NumPy interpreter: a compiled plan that frees intermediates, and feed validation."""
import numpy as np
import pytest

import graphdl as gd
from graphdl.engine.interpreter import Plan


def _chain():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 3])
    a = gd.exp(x)
    c = gd.tanh(a)
    return b.build({"y": gd.relu(c)})


def test_plan_frees_each_intermediate_after_its_last_use():
    plan = Plan(_chain())
    slots = [step[3][0] for step in plan.steps]  # output slot of exp, tanh, relu
    frees = [step[4] for step in plan.steps]
    assert frees[0] == (plan.input_slots[0][1],)  # x dies at exp
    assert frees[1] == (slots[0],) and frees[2] == (slots[1],)


def test_feed_errors_name_the_input_and_expected_type():
    g = _chain()
    with pytest.raises(gd.FeedError, match=r"missing feed\(s\) \['x'\]"):
        gd.run(g, {})
    with pytest.raises(gd.FeedError, match=r"unknown feed\(s\) \['z'\]"):
        gd.run(g, {"x": np.ones((2, 3), np.float32), "z": 1})
    with pytest.raises(gd.FeedError, match="expected dtype float32, got float64"):
        gd.run(g, {"x": np.ones((2, 3))})
    with pytest.raises(gd.FeedError, match=r"expected shape \[N,3\], got \[2, 4\]"):
        gd.run(g, {"x": np.ones((2, 4), np.float32)})


def test_one_symbol_binds_one_size_across_feeds():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 2])
    y = b.input("y", ["N", 2])
    g = b.build({"s": x + y})
    with pytest.raises(gd.FeedError, match="dim N is 5 on axis 0, but 3 in feed 'x'"):
        gd.run(g, {"x": np.ones((3, 2), np.float32), "y": np.ones((5, 2), np.float32)})


def test_runtime_kernel_failure_names_the_node():
    b = gd.GraphBuilder()
    x = b.input("x", [None])
    g = b.build({"r": gd.reshape(x, [2, 2])})
    with pytest.raises(gd.GraphError, match=r"node r \(op reshape\)"):
        gd.run(g, {"x": np.ones(3, np.float32)})


def test_results_are_deterministic_and_match_numpy_reference():
    g = _chain()
    xv = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    a, b_ = gd.run(g, {"x": xv})["y"], gd.run(g, {"x": xv})["y"]
    assert a.tobytes() == b_.tobytes()
    np.testing.assert_allclose(a, np.maximum(np.tanh(np.exp(xv)), 0), rtol=1e-6)
