"""True parameters: initializers that a parameterised op reads as a weight, bias, scale or
table, directly or through data movement; never constants, initial states or statistics."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd
from graphdl import ops
from graphdl.tools.cli import main
from graphdl.training.param_roles import parameter_roles, true_parameters


def _model() -> gd.Graph:
    """Conv + batch norm, an LSTM whose weights pass through Transpose and Concat, a PReLU
    written as ONNX's decomposition, a Gather table and assorted constants."""
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    b = gd.GraphBuilder("roles")
    x, seq, ids = b.input("x", ["N", 1, 4, 4]), b.input("s", [3, "N", 2]), \
        b.input("ids", ["N"], "int64")
    h = ops.conv(x, b.param("conv.w", f(2, 1, 3, 3)), b.param("conv.b", f(2)), pads=[1] * 4)
    h = ops.batch_norm(h, b.param("bn.g", f(2)), b.param("bn.b", f(2)),
                       b.param("bn.mean", f(2)), b.param("bn.var", np.ones(2, np.float32)))
    w = ops.concat([b.param("w_top", f(1, 4, 2)), b.param("w_bottom", f(1, 4, 2))], axis=1)
    r = ops.transpose(b.param("r_t", f(1, 2, 8)), [0, 2, 1])
    zeros = b.param("h0", np.zeros((1, 1, 2), np.float32))
    y = ops.lstm(seq, w, r, None, zeros, zeros)[1]
    slope = b.param("slope", np.full(2, 0.25, np.float32))
    y = ops.where(y < 0.0, y * slope, y) * b.param("ratio", np.float32(0.5))
    emb = ops.gather(b.param("table", f(5, 2)), ids, axis=0)
    out = ops.reduce_sum(h) + ops.reduce_sum(y) + ops.reduce_sum(emb)
    b.param("unused", f(3))
    return b.build({"out": out})


def test_roles_of_a_handmade_model():
    roles = parameter_roles(_model())
    want = {"conv.w", "conv.b", "bn.g", "bn.b", "w_top", "w_bottom", "r_t", "slope", "table"}
    assert set(true_parameters(_model())) == want
    assert "running statistic" in roles["bn.mean"].reason
    assert "initial state" in roles["h0"].reason
    assert not roles["ratio"].trainable and not roles["unused"].trainable
    assert roles["w_top"].reason.startswith("weight of lstm")


def test_inspect_params_lists_each_initializer(tmp_path, capsys):
    path = tmp_path / "roles.onnx"
    from graphdl.onnx.export import to_onnx

    path.write_bytes(to_onnx(_model()).SerializeToString())
    assert main(["inspect", "--params", str(path)]) == 0
    lines = {ln.split()[1][1:]: ln.split()[0] for ln in capsys.readouterr().out.splitlines()
             if ln.startswith("  ")}
    assert lines["conv.w"] == "train" and lines["h0"] == "fixed" and lines["bn.var"] == "fixed"


def _lstm_export(path) -> None:
    """A PyTorch LSTM classifier exported (TorchScript exporter, train mode, fixed batch) with
    every Constant node moved into an initializer, as the dynamo exporter writes them."""
    import warnings

    import onnx

    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(4, 6, batch_first=True)
            self.drop, self.fc = torch.nn.Dropout(0.3), torch.nn.Linear(6, 3)

        def forward(self, x):
            h0 = torch.zeros(1, x.shape[0], 6)
            return self.fc(self.drop(self.lstm(x, (h0, h0))[0][:, -1]))

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Net().train(), (torch.randn(2, 5, 4),), str(path), dynamo=False,
                          opset_version=17, input_names=["x"], output_names=["logits"],
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    m = onnx.load(str(path))
    kept = []
    for n in m.graph.node:
        if n.op_type == "Constant":
            t = onnx.helper.get_attribute_value(n.attribute[0])
            t.name = n.output[0]
            m.graph.initializer.append(t)
        else:
            kept.append(n)
    del m.graph.node[:]
    m.graph.node.extend(kept)
    onnx.save(m, str(path))


def test_pytorch_lstm_defaults_exclude_initial_state_and_constants(tmp_path):
    path = tmp_path / "lstm.onnx"
    _lstm_export(path)
    g = gd.from_onnx(str(path))
    params = set(true_parameters(g))
    torch_names = {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                   "lstm.bias_hh_l0", "fc.weight", "fc.bias"}
    assert params == torch_names
    floats = {v.name for v in g.initializers if v.type.dtype.is_float}
    assert floats - params  # the zero initial state and the dropout ratio are still there


def test_decomposed_onnx_ops_keep_their_parameters(tmp_path):
    """InstanceNormalization and PRelu import as primitives; their scale, shift and slope
    are still parameters, Reshape's shape vector is not."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f = lambda n, a: numpy_helper.from_array(np.asarray(a, np.float32), n)  # noqa: E731
    nodes = [helper.make_node("InstanceNormalization", ["x", "in.scale", "in.bias"], ["h"]),
             helper.make_node("PRelu", ["h", "act.slope"], ["p"]),
             helper.make_node("Reshape", ["p", "shape"], ["y"])]
    inits = [f("in.scale", [1.0, 2.0]), f("in.bias", [0.1, 0.2]),
             f("act.slope", np.full((2, 1, 1), 0.25)),
             numpy_helper.from_array(np.array([1, 8], np.int64), "shape")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 2, 2, 2])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 8])], inits)
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    roles = parameter_roles(gd.from_onnx(str(path)))
    assert {n for n, r in roles.items() if r.trainable} == {"in.scale", "in.bias", "act.slope"}
    assert roles["act.slope"].reason.startswith("slope")
    assert roles["in.scale"].reason.startswith("scale")
    assert roles["in.bias"].reason.startswith("shift")
