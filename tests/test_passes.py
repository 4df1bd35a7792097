"""Pass infrastructure: shape inference re-infers a graph, DCE drops dead nodes, the pass
manager verifies after each pass and names the one that fails."""
import numpy as np
import pytest

import graphdl as gd
from graphdl.core.ir import Graph
from graphdl.core.types import TensorType
from passes import (DeadCodeElimination, Pass, PassManager, PassResult, ShapeInference,
                    infer_shapes)


def _graph() -> Graph:
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 3])
    gd.exp(x)  # dead
    y = gd.flatten(gd.reshape(x, [-1, 3, 1]))
    return b.build({"y": gd.tanh(y)})


def test_shape_inference_recovers_types_that_were_lost():
    g = _graph()
    blank = [v for n in g.nodes for v in n.outputs]
    for v in blank:  # simulate an importer that knew nothing
        v.type = TensorType(v.type.dtype, None)
    out = infer_shapes(g)
    assert str(out.value("y").type) == "f32[N,3]"


def test_dce_removes_only_dead_nodes_and_keeps_results():
    g = _graph()
    res = DeadCodeElimination().run(g)
    assert res.changed and [n.op for n in res.graph.nodes] == [
        "constant", "reshape", "flatten", "tanh"]
    xv = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(gd.run(res.graph, {"x": xv})["y"], gd.run(g, {"x": xv})["y"])


class _Breaks(Pass):
    """Drops the constant that reshape reads: leaves a use before definition."""

    def run(self, g: Graph) -> PassResult:
        nodes = tuple(n for n in g.nodes if n.op != "constant")
        return PassResult(Graph(g.inputs, nodes, g.outputs, g.initializers), True)


def test_manager_verifies_after_each_pass_and_names_the_failing_one():
    pm = PassManager([ShapeInference(), _Breaks()])
    with pytest.raises(gd.PassError, match=r"pass _Breaks failed: .*before it is defined"):
        pm.run(_graph())


def test_fixed_point_stops_when_nothing_changes():
    pm = PassManager([DeadCodeElimination(), ShapeInference()], fixed_point=True)
    res = pm.run(_graph())
    assert res.changed
    assert [t.name for t in pm.trace] == ["DeadCodeElimination", "ShapeInference"] * 2
