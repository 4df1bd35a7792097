"""graphdl's recurrent ops and layers: the layers against PyTorch's modules (weights converted
by onnx_weights_from_torch), the chapter's GRU (linear_before_reset=0, which PyTorch lacks)
against the equations written out here, export to one ONNX node and back, and errors."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import graphdl as gd
import passes
from graphdl.nn import GRU, LSTM, RNN, onnx_weights_from_torch

N, T, I, H = 3, 5, 4, 6


def _x(dtype=np.float64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N, T, I)).astype(dtype)


def _layer_graph(layer, dtype=np.float64, states: int = 0) -> gd.Graph:
    b = gd.GraphBuilder("seq")
    x = b.input("x", ["N", T, I], np.dtype(dtype).name)
    init = [b.input(f"s{k}", ["N", H], np.dtype(dtype).name) for k in range(states)]
    return b.build({"y": layer(x, *init)})


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def _chapter_gru(x, w, r, bias, h):
    """The chapter's GRU, from its equations: z, r gates, h~ = tanh(W_h x + U_h (r*h) + b_h),
    h = (1 - z) h~ + z h; blocks z, r, h of ONNX's W, R, B."""
    (wz, wr, wh), (uz, ur, uh) = np.split(w[0], 3), np.split(r[0], 3)
    bz, br, bh = np.split(bias[0][:3 * H] + bias[0][3 * H:], 3)
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        z = _sigmoid(xt @ wz.T + h @ uz.T + bz)
        rr = _sigmoid(xt @ wr.T + h @ ur.T + br)
        cand = np.tanh(xt @ wh.T + (rr * h) @ uh.T + bh)
        h = (1 - z) * cand + z * h
        outs.append(h)
    return np.stack(outs, axis=1)


def test_chapter_gru_matches_its_equations():
    """float64 in the interpreter; float32 in onnxruntime, whose GRU kernel has no float64."""
    x, h0 = _x(), np.random.default_rng(1).standard_normal((N, H))
    for backend, dtype, tol in (("numpy", np.float64, 1e-10), ("ort", np.float32, 1e-5)):
        g = _layer_graph(GRU(I, H, return_sequences=True, seed=3), dtype, states=1)
        p = {v.name.split(".")[1]: a.astype(np.float64) for v, a in g.initializers.items()}
        want = _chapter_gru(x.astype(dtype), p["W"], p["R"], p["B"], h0.astype(dtype))
        got = gd.run(g, {"x": x.astype(dtype), "s0": h0.astype(dtype)}, backend=backend)["y"]
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=backend)


def _torch_module(torch, kind: str):
    torch.manual_seed(0)
    return getattr(torch.nn, kind)(I, H, batch_first=True).double()


def _layer_from_torch(kind: str, module, return_sequences: bool):
    cls = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}[kind]
    kw = {"linear_before_reset": 1} if kind == "GRU" else {}
    layer = cls(I, H, return_sequences=return_sequences, **kw)
    g = _layer_graph(layer, states=2 if kind == "LSTM" else 1)
    sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    w, r, bias = onnx_weights_from_torch(kind.lower(), sd["weight_ih_l0"], sd["weight_hh_l0"],
                                         sd["bias_ih_l0"], sd["bias_hh_l0"])
    inits = {v: {"W": w, "R": r, "B": bias}[v.name.split(".")[1]] for v in g.initializers}
    return gd.Graph(g.inputs, g.nodes, g.outputs, inits, g.name)


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_layers_equal_torch_modules(kind, return_sequences):
    torch = pytest.importorskip("torch")
    module = _torch_module(torch, kind)
    g = _layer_from_torch(kind, module, return_sequences)
    rng = np.random.default_rng(2)
    x = _x()
    states = [rng.standard_normal((N, H)) for _ in range(2 if kind == "LSTM" else 1)]
    feeds = {"x": x, **{f"s{k}": s for k, s in enumerate(states)}}
    init = tuple(torch.tensor(s[None]) for s in states)
    out, last = module(torch.tensor(x), init if kind == "LSTM" else init[0])
    last = last[0] if kind == "LSTM" else last
    want = out.detach().numpy() if return_sequences else last[0].detach().numpy()
    np.testing.assert_allclose(gd.run(g, feeds)["y"], want, rtol=1e-10, atol=1e-12)


def test_export_is_one_onnx_node_and_imports_back():
    layer = LSTM(I, H, return_sequences=True, seed=1)
    g = _layer_graph(layer, np.float32)
    model = gd.to_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node].count("LSTM") == 1
    assert not {"Sigmoid", "Tanh", "MatMul"} & {n.op_type for n in model.graph.node}
    back = gd.from_onnx(model)
    assert [n.op for n in back.nodes].count("lstm") == 1
    x = _x(np.float32)
    np.testing.assert_allclose(gd.run(back, {"x": x})["y"], gd.run(g, {"x": x})["y"],
                               rtol=1e-5, atol=1e-6)


def test_gradient_graph_differentiates_the_unrolled_steps():
    """BPTT is the backprop pass on the decomposition: the gradient graph holds T recurrent
    matmuls forward; its loss and gradient run the same in both engines."""
    layer = GRU(I, H, seed=2)
    b = gd.GraphBuilder("loss")
    x = b.input("x", ["N", T, I])
    g = b.build({"loss": gd.reduce_sum(layer(x) * layer(x))})
    gg = passes.grad(g, "loss", ["gru1.W", "gru1.R", "gru1.B"])
    assert not {"gru", "lstm", "rnn"} & {n.op for n in gg.nodes}
    feeds = {"x": _x(np.float32)}
    ours, theirs = gd.run(gg, feeds), gd.run(gg, feeds, backend="ort")
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_shape_errors_name_the_op_and_shapes():
    b = gd.GraphBuilder("bad")
    x = b.input("x", [T, N, I])
    w = b.param("w", np.zeros((1, 4 * H, I + 1), np.float32))
    r = b.param("r", np.zeros((1, 4 * H, H), np.float32))
    with pytest.raises(gd.ShapeError, match=r"lstm.*W must be \[1,24,4\], got \[1,24,5\]"):
        gd.lstm(x, w, r)
    xs = b.input("xs", ["T", N, I])
    with pytest.raises(gd.ShapeError, match="sequence length must be a static int"):
        gd.rnn(xs, b.param("w1", np.zeros((1, H, I), np.float32)),
               b.param("r1", np.zeros((1, H, H), np.float32)))
    with pytest.raises(gd.GraphError, match="activation must be one of .* got 'gelu'"):
        gd.rnn(x, b.param("w2", np.zeros((1, H, I), np.float32)),
               b.param("r2", np.zeros((1, H, H), np.float32)), activation="gelu")
    with pytest.raises(gd.ShapeError, match=r"expects inputs \[N, T, 4\], got \[3,5,2\]"):
        LSTM(I, H)(b.input("x2", [N, T, 2]))


def test_importer_refuses_what_it_cannot_represent():
    w = onnx.numpy_helper.from_array(np.zeros((1, 4, 2), np.float32), "W")
    r = onnx.numpy_helper.from_array(np.zeros((1, 4, 4), np.float32), "R")
    node = onnx.helper.make_node("RNN", ["X", "W", "R"], ["Y"], hidden_size=4, clip=1.0)
    graph = onnx.helper.make_graph(
        [node], "g", [onnx.helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [2, 1, 2])],
        [onnx.helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, None)], [w, r])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    with pytest.raises(gd.OnnxError, match="op RNN.*clip is not supported"):
        gd.from_onnx(model)


def _example():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "sequence_digits.py"
    spec = importlib.util.spec_from_file_location("sequence_digits", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sequence_digits_lstm_learns_in_both_engines():
    """A short run of the example (4 of its 15 epochs): well past chance in both engines, and
    the engines agree step by step at the start (same weights, same batches)."""
    pytest.importorskip("sklearn")
    ex = _example()
    runs = {e: ex.train("lstm", e, epochs=4, verbose=False) for e in ("numpy", "ort")}
    for engine, r in runs.items():
        assert r["test_accuracy"] >= 0.85, (engine, r["test_accuracy"])
        assert r["losses"][-1] < 0.25 * r["losses"][0], engine
    a, b = runs["numpy"]["losses"], runs["ort"]["losses"]
    np.testing.assert_allclose(a[:3], b[:3], rtol=1e-5)
    assert a[0] == pytest.approx(np.log(10), abs=0.2)
