"""graph.summary(): per-node shapes, parameters and FLOPs, checked against counts derived by
hand for an MLP and its gradient graph."""
from __future__ import annotations

import json

import numpy as np

import graphdl as gd
import passes
from graphdl.core.summary import poly_str


def mlp():
    b = gd.GraphBuilder("mlp")
    x, y = b.input("x", ["N", 64]), b.input("y", ["N"], "int64")
    w1 = b.param("w1", np.zeros((64, 32), np.float32))
    b1 = b.param("b1", np.zeros(32, np.float32))
    w2 = b.param("w2", np.zeros((32, 10), np.float32))
    h = gd.relu(x @ w1 + b1)
    return b.build({"loss": gd.softmax_cross_entropy(h @ w2, y)})


def test_rows_give_shapes_params_and_flops():
    s = mlp().summary()
    assert [r.op for r in s.rows] == ["matmul", "add", "relu", "matmul", "softmax_cross_entropy"]
    mm1, add, relu, mm2, loss = s.rows
    assert [str(v.type) for v in mm1.outputs] == ["f32[N,32]"]
    assert (mm1.params, add.params, relu.params, mm2.params) == (64 * 32, 32, 0, 32 * 10)
    assert poly_str(mm1.flops) == f"N*{2 * 64 * 32}"  # a multiply-add per (row, k, col)
    assert poly_str(add.flops) == "N*32" and poly_str(relu.flops) == "N*32"
    assert poly_str(mm2.flops) == f"N*{2 * 32 * 10}"
    assert poly_str(loss.flops) == "N*10"  # one per logit
    assert s.total_params == 64 * 32 + 32 + 32 * 10
    assert poly_str(s.total_flops) == f"N*{2 * 64 * 32 + 32 + 32 + 2 * 32 * 10 + 10}"


def test_text_table_has_a_totals_line():
    text = str(mlp().summary())
    assert text.splitlines()[0].split() == ["node", "op", "output", "params", "flops"]
    assert text.splitlines()[-1] == "total: 5 nodes, 2,400 parameters, N*4810 FLOPs"


def test_gradient_graph_marks_gradient_nodes_and_counts_data_movement_as_free():
    g = mlp()
    gg = passes.grad(g, "loss", ["w1", "b1", "w2"])
    s = gg.summary()
    marked = [r.node for r in s.rows if r.grad_of]
    assert marked == [n.name for n in gg.nodes if n.grad_of]
    for r in s.rows:
        if r.op in ("transpose", "shape", "constant"):
            assert r.flops == {}
    w1_grad = next(r for r in s.rows if r.outputs[0].name == "w1_grad")
    assert poly_str(w1_grad.flops) == f"N*{2 * 64 * 32}"  # x^T [64,N] @ delta [N,32]
    assert str(s).rstrip().endswith("(* gradient node)")


def test_json_form_keeps_symbolic_dims():
    d = json.loads(json.dumps(mlp().summary().to_dict()))
    assert d["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["N", 64]},
                           {"name": "y", "dtype": "int64", "shape": ["N"]}]
    assert d["outputs"] == [{"name": "loss", "dtype": "float32", "shape": []}]
    assert d["nodes"][0]["outputs"][0]["shape"] == ["N", 32]
    assert d["totals"] == {"nodes": 5, "params": 2400, "flops": "N*4810"}


def test_unknown_dims_make_flops_unknown_and_constant_graphs_count_numbers():
    b = gd.GraphBuilder()
    x = b.input("x", [None, 3])
    g = b.build({"y": gd.tanh(x), "z": gd.tanh(b.input("c", [2, 3]))})
    s = g.summary()
    assert poly_str(s.rows[0].flops) == "?" and poly_str(s.rows[1].flops) == "6"
    assert poly_str(s.total_flops) == "?"
