"""Exported training steps have no dead nodes: every ONNX node's output is read by another
node or is a graph output. onnxruntime runs dead nodes all the same (it does not prune them),
so a lowering that emits an output its graph never reads (an LSTM's last cell state, say)
costs every step a kernel."""
from __future__ import annotations

import pytest

import graphdl as gd
import passes
from benchmarks import realistic_models as rm
from graphdl import optim
from graphdl.nn import GRU, LSTM, RNN, Dense


def _dead(model) -> list[str]:
    g = model.graph
    read = {o.name for o in g.output} | {i for n in g.node for i in n.input}
    return [f"{n.op_type} {n.name}" for n in g.node if not any(o in read for o in n.output if o)]


def _recurrent_step(layer):
    b = gd.GraphBuilder("seq")
    x, y = b.input("x", ["N", 5, 3]), b.input("y", ["N"], "int64")
    logits = Dense(4, 2, seed=1)(layer(3, 4, seed=0)(x))
    return passes.training_step(b.build({"loss": gd.softmax_cross_entropy(logits, y)}),
                                optim.Adam(lr=1e-3))


@pytest.mark.parametrize("name", ["mlp", "resnet", "lstm", "gru", "rnn"])
def test_exported_training_step_has_no_dead_node(name):
    step = {"mlp": lambda: rm.mlp_step((12, 8, 5)),
            "resnet": lambda: rm.resnet_step((4, 8, 8), 8, 1),
            "lstm": lambda: _recurrent_step(LSTM), "gru": lambda: _recurrent_step(GRU),
            "rnn": lambda: _recurrent_step(RNN)}[name]()
    assert _dead(step.to_onnx()) == []
