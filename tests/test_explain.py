"""graphdl.tools.explain: the backprop recursion unrolled. The terms it lists for a hidden layer are
the layer's out-edges written down by hand, and the gradient the pass builds equals the sum of
those terms derived by hand in NumPy."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

import graphdl as gd
import passes

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(0)
W1 = RNG.standard_normal((4, 6)).astype(np.float32)
B1 = RNG.standard_normal(6).astype(np.float32) * 0.1
W2 = RNG.standard_normal((6, 3)).astype(np.float32)
ETA = 0.01


def mlp(penalty: bool):
    """A 2-layer MLP; with ``penalty`` the loss adds ETA * sum|h| (the chapter's sparse code
    penalty), giving the hidden layer a second out-edge. Returns the graph and the tensors."""
    b = gd.GraphBuilder("mlp2")
    x, y = b.input("x", ["N", 4]), b.input("y", ["N"], "int64")
    h = gd.relu(x @ b.param("w1", W1) + b.param("b1", B1))
    z = h @ b.param("w2", W2)
    loss = gd.softmax_cross_entropy(z, y)
    a = None
    if penalty:
        a = gd.abs(h)
        loss = loss + ETA * gd.reduce_sum(a)
    outs = {"loss": loss, "h_mean": gd.reduce_mean(h)}  # h_mean: off the loss path
    return b.build(outs), {"h": h, "z": z, "a": a}


def test_hidden_layer_gradient_is_its_single_out_edge():
    g, t = mlp(penalty=False)
    ex = gd.explain(g, "loss", t["h"])
    root = ex[t["h"].name]
    assert root.edges() == [(t["z"].name, 0)]  # h's only use on a path: slot 0 of h @ w2
    (term,) = root.terms
    (dz,) = term.deltas
    assert dz.value.name == t["z"].name and dz.edges() == [("loss", 0)]
    assert dz.terms[0].deltas[0].seed


def test_hidden_layer_gradient_is_the_sum_of_its_out_edge_terms():
    g, t = mlp(penalty=True)
    gg = passes.grad(g, "loss", [t["h"]])
    ex = gd.explain(g, "loss", t["h"].name, grad_graph=gg)
    root = ex[t["h"].name]
    assert root.edges() == [(t["z"].name, 0), (t["a"].name, 0)]
    # the VJP terms by hand: through h @ w2 (dz W2^T) and through |h| (ETA sign h)
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    y = np.array([0, 2, 1, 1, 0])
    h = np.maximum(x @ W1 + B1, 0)
    z = h @ W2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(3)[y]) / len(y)
    terms = [dz @ W2.T, ETA * np.sign(h)]
    got = gd.run(gg, {"x": x, "y": y})[f"{t['h'].name}_grad"]
    np.testing.assert_allclose(got, terms[0] + terms[1], rtol=1e-5, atol=1e-7)
    # each term lists the gradient nodes the pass tagged with its forward node
    for term in root.terms:
        tagged = [n.name for n in gg.nodes if n.grad_of == term.node.name]
        assert [n.name for n in term.grad_nodes] == tagged and tagged


def test_text_tree_lists_the_terms_and_the_paths():
    g, t = mlp(penalty=True)
    text = str(gd.explain(g, "loss", t["h"]))
    h, z, a = t["h"].name, t["z"].name, t["a"].name
    assert f"delta(%{h}: f32[N,6]) = sum of 2 out-edge terms" in text
    assert f"|-- term 1: vjp of matmul for input 0, through %{z} = matmul(%{h}, %w2)" in text
    assert f"`-- term 2: vjp of abs for input 0, through %{a} = abs(%{h})" in text
    assert "delta(%loss: f32[]) = 1  (the loss: the recursion's seed)" in text
    assert "reduce_mean" not in text.split("forward paths")[0]  # h_mean is off the path
    paths = text.split("forward paths")[1].splitlines()[1:]
    assert paths == [f"  {h} -> matmul -> softmax_cross_entropy -> add",
                     f"  {h} -> abs -> reduce_sum -> mul -> add"]


def test_a_value_reached_twice_is_expanded_once():
    b = gd.GraphBuilder()
    x = b.input("x", [3])
    u = gd.tanh(x)
    v = u * u + gd.exp(u)  # u has three uses, all leading to v
    g = b.build({"loss": gd.reduce_sum(v)})
    root = gd.explain(g, "loss", "x")[x.name]
    (t,) = root.terms
    du = t.deltas[0]
    assert len(du.terms) == 3
    shown = [d.shown_above for term in du.terms for d in term.deltas]
    assert shown.count(False) == 2 and shown.count(True) == 1  # mul's output once, exp's once


def test_a_long_chain_needs_no_deep_recursion():
    b = gd.GraphBuilder()
    h = x = b.input("x", [2])
    for _ in range(3000):
        h = gd.tanh(h)
    text = str(gd.explain(b.build({"loss": gd.reduce_sum(h)}), "loss", x))
    assert text.count("vjp of tanh") == 3000


def test_cli_explain_on_the_example():
    r = subprocess.run([sys.executable, "-m", "graphdl", "explain",
                        str(ROOT / "examples" / "mlp_digits.py:loss_model"), "--wrt", "relu_3"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "delta(%relu_3: f32[N,256]) = sum of 1 out-edge term" in r.stdout
    assert "term 1: vjp of matmul for input 0, through %matmul_4 = matmul(%relu_3, %dense2.W)" \
        in r.stdout
    assert "built by the gradient nodes of matmul_4: " in r.stdout


def test_a_value_off_every_path_has_no_terms():
    b = gd.GraphBuilder()
    x, z = b.input("x", [2]), b.input("z", [2])
    g = b.build({"loss": gd.reduce_sum(x), "other": gd.reduce_sum(z)})
    ex = gd.explain(g, "loss", "z")
    assert ex["z"].terms == []
    assert "delta(%z: f32[2]) = 0  (no path from it to the loss)" in str(ex)
