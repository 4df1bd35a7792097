"""The fused ONNX lowerings of the transformer ops (Attention, LayerNormalization, Gelu,
RMSNormalization) against graphdl's interpreter in onnxruntime, their decompositions below the
opsets that define them, and attention masks whose gradients stay finite."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import graphdl as gd
import passes


def _block(b: gd.GraphBuilder) -> gd.Tensor:
    """A pre-norm attention block over (N, 2, 5, 4) heads with a bool padding mask."""
    x = b.input("x", ["N", 2, 5, 4], "float32")
    mask = b.input("mask", ["N", 1, 1, 5], "bool")
    rng = np.random.default_rng(0)
    scale, bias = (b.const(rng.standard_normal(4).astype(np.float32)) for _ in range(2))
    h = gd.layer_norm(x, scale, bias)
    a = gd.attention(h, h, gd.gelu(h), mask, is_causal=True)
    a = gd.attention(a, h, h, mask)
    return gd.rms_norm(gd.gelu(a, "tanh"), scale)


def _feeds(n: int = 3) -> dict:
    rng = np.random.default_rng(1)
    mask = np.ones((n, 1, 1, 5), bool)
    mask[0, ..., 3:] = False
    return {"x": rng.standard_normal((n, 2, 5, 4)).astype(np.float32), "mask": mask}


@pytest.mark.parametrize("opset,fused", [(28, True), (16, False)])
def test_fused_ops_match_the_interpreter(opset, fused):
    b = gd.GraphBuilder("block")
    g = b.build({"y": _block(b)})
    types = {n.op_type for n in gd.to_onnx(g, opset=opset).graph.node}
    for op in ("Attention", "LayerNormalization", "Gelu", "RMSNormalization"):
        assert (op in types) == fused, (op, types)
    feeds = _feeds()
    want = gd.run(g, feeds)["y"]
    model = gd.to_onnx(g, opset=opset)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(["y"], feeds)[0], want, rtol=1e-4, atol=1e-5)


def _masked_softmax_graph(kind: str) -> gd.Graph:
    """scores (N, 3, 4) masked by -inf additively or by Where, softmax, weighted sum."""
    b = gd.GraphBuilder(kind)
    s = b.input("s", ["N", 3, 4], "float64")
    keep = b.input("keep", ["N", 3, 4], "bool")
    w = b.input("w", ["N", 3, 4], "float64")
    if kind == "additive":
        minus_inf = gd.where(keep, b.const(np.zeros((), np.float64)),
                             b.const(np.asarray(-np.inf)))
        p = gd.softmax(s + minus_inf)
    else:
        p = gd.softmax(gd.where(keep, s, b.const(np.asarray(-np.inf))))
    return b.build({"loss": gd.reduce_sum(p * w)})


@pytest.mark.parametrize("kind", ["additive", "where"])
def test_masked_softmax_gradients_are_finite_and_right(kind):
    g = _masked_softmax_graph(kind)
    rng = np.random.default_rng(2)
    keep = rng.random((2, 3, 4)) > 0.4
    keep[..., 0] = True  # every row sees a key
    feeds = {"s": rng.standard_normal((2, 3, 4)), "keep": keep,
             "w": rng.standard_normal((2, 3, 4))}
    grad = gd.run(passes.grad(g, "loss", ["s"]), feeds)["s_grad"]
    assert np.all(np.isfinite(grad))
    assert np.all(grad[~keep] == 0.0)
    d = rng.standard_normal(grad.shape)
    f = [gd.run(g, dict(feeds, s=feeds["s"] + e * d))["loss"] for e in (1e-6, -1e-6)]
    np.testing.assert_allclose(np.sum(grad * d), (f[0] - f[1]) / 2e-6, rtol=1e-6)


def test_attention_gradients_finite_with_fully_masked_rows():
    """A query row with every key masked attends to nothing (output 0, as ONNX defines);
    its gradients are 0, not NaN, and the live rows' match finite differences."""
    b = gd.GraphBuilder("dead")
    q = b.input("q", [1, 1, 3, 2], "float64")
    k, v = (b.input(n, [1, 1, 4, 2], "float64") for n in "kv")
    mask = b.input("mask", [1, 1, 3, 4], "float64")
    w = b.input("w", [1, 1, 3, 2], "float64")
    y = gd.attention(q, k, v, mask)
    g = b.build({"loss": gd.reduce_sum(y * w), "y": y})
    rng = np.random.default_rng(3)
    m = np.zeros((1, 1, 3, 4))
    m[0, 0, 1, :] = -np.inf  # row 1 sees nothing
    m[0, 0, 2, 1:] = -np.inf
    feeds = {"q": rng.standard_normal((1, 1, 3, 2)), "k": rng.standard_normal((1, 1, 4, 2)),
             "v": rng.standard_normal((1, 1, 4, 2)), "mask": m,
             "w": rng.standard_normal((1, 1, 3, 2))}
    out = gd.run(passes.grad(g, "loss", ["q", "k", "v"]), feeds)
    assert np.all(out["y"][0, 0, 1] == 0.0)
    for n in "qkv":
        assert np.all(np.isfinite(out[f"{n}_grad"])), n
    assert np.all(out["q_grad"][0, 0, 1:] == 0.0)  # row 1 dead, row 2 sees one key only
    d = rng.standard_normal((1, 1, 4, 2))
    f = [gd.run(g, dict(feeds, v=feeds["v"] + e * d))["loss"] for e in (1e-6, -1e-6)]
    np.testing.assert_allclose(np.sum(out["v_grad"] * d), (f[0] - f[1]) / 2e-6, rtol=1e-6)



def test_causal_encoder_with_symbolic_sequence_length():
    """A causal encoder layer over [N, S, 8] with S symbolic: its gradient graph runs in both
    engines at two sequence lengths, and each position's output ignores later positions."""
    from graphdl import nn

    b = gd.GraphBuilder("causal")
    x = b.input("x", ["N", "S", 8], "float64")
    r = b.input("r", ["N", "S", 8], "float64")
    layer = nn.TransformerEncoderLayer(8, 2, 16, activation=nn.GELU("tanh"), causal=True,
                                       name="enc")  # float64 Erf: no onnxruntime kernel
    y = layer(x)
    g = b.build({"y": y, "loss": gd.reduce_sum(y * r)})
    gg = passes.grad(g, "loss", ["x"])
    rng = np.random.default_rng(5)
    for s in (3, 6):
        fd = {"x": rng.standard_normal((2, s, 8)), "r": rng.standard_normal((2, s, 8))}
        ours, theirs = gd.run(gg, fd), gd.run(gg, fd, backend="ort")
        np.testing.assert_allclose(theirs["x_grad"], ours["x_grad"], rtol=1e-9, atol=1e-12)
        later = dict(fd, x=fd["x"].copy())
        later["x"][:, -1] += 1.0  # changing the last position changes no earlier output
        y2 = gd.run(g, later)["y"]
        np.testing.assert_allclose(y2[:, :-1], ours["y"][:, :-1], rtol=1e-12, atol=1e-12)
        assert not np.allclose(y2[:, -1], ours["y"][:, -1])
