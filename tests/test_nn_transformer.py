"""graphdl.nn's transformer and mobile layers against PyTorch (float64, copied weights):
outputs and gradients of every parameter; embedding gradients as a scatter-add."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl import nn

torch = pytest.importorskip("torch")


def _with_params(g: gd.Graph, values: dict[str, np.ndarray]) -> gd.Graph:
    """g with the named initializers replaced (same shapes)."""
    inits = {v: values.get(v.name, a) for v, a in g.initializers.items()}
    for v, a in inits.items():
        assert a.shape == g.initializers[v].shape, v.name
    return dataclasses.replace(g, initializers=inits)


def _encoder_weights(t: "torch.nn.TransformerEncoderLayer", d: int) -> dict[str, np.ndarray]:
    w = t.self_attn.in_proj_weight.detach().numpy()
    bias = t.self_attn.in_proj_bias.detach().numpy()
    out = {f"enc.attn.W{n}": w[i * d:(i + 1) * d].T for i, n in enumerate("qkv")}
    out.update({f"enc.attn.b{n}": bias[i * d:(i + 1) * d] for i, n in enumerate("qkv")})
    out["enc.attn.Wo"] = t.self_attn.out_proj.weight.detach().numpy().T
    out["enc.attn.bo"] = t.self_attn.out_proj.bias.detach().numpy()
    for ours, theirs in (("ln1", t.norm1), ("ln2", t.norm2)):
        out[f"enc.{ours}.gamma"] = theirs.weight.detach().numpy()
        out[f"enc.{ours}.beta"] = theirs.bias.detach().numpy()
    for ours, theirs in (("ff1", t.linear1), ("ff2", t.linear2)):
        out[f"enc.{ours}.W"] = theirs.weight.detach().numpy().T
        out[f"enc.{ours}.b"] = theirs.bias.detach().numpy()
    return out


def _torch_grad_of(t_layer, name: str, d: int) -> np.ndarray:
    """The torch gradient laid out as graphdl's parameter ``name``."""
    local = name.split(".", 1)[1]
    if local.startswith("attn.W") and local[-1] in "qkv":
        i = "qkv".index(local[-1])
        return t_layer.self_attn.in_proj_weight.grad.numpy()[i * d:(i + 1) * d].T
    if local.startswith("attn.b") and local[-1] in "qkv":
        i = "qkv".index(local[-1])
        return t_layer.self_attn.in_proj_bias.grad.numpy()[i * d:(i + 1) * d]
    table = {"attn.Wo": (t_layer.self_attn.out_proj.weight, True),
             "attn.bo": (t_layer.self_attn.out_proj.bias, False),
             "ln1.gamma": (t_layer.norm1.weight, False), "ln1.beta": (t_layer.norm1.bias, False),
             "ln2.gamma": (t_layer.norm2.weight, False), "ln2.beta": (t_layer.norm2.bias, False),
             "ff1.W": (t_layer.linear1.weight, True), "ff1.b": (t_layer.linear1.bias, False),
             "ff2.W": (t_layer.linear2.weight, True), "ff2.b": (t_layer.linear2.bias, False)}
    p, transposed = table[local]
    return p.grad.numpy().T if transposed else p.grad.numpy()


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-norm", "post-norm"])
def test_encoder_layer_matches_torch(norm_first):
    d, heads, ff, n, s = 8, 2, 16, 3, 5
    torch.manual_seed(0)
    t_layer = torch.nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, activation="gelu",
                                               batch_first=True, norm_first=norm_first).double()
    b = gd.GraphBuilder("enc")
    x = b.input("x", ["N", s, d], "float64")
    keep = b.input("keep", ["N", s], "bool")
    r = b.input("r", ["N", s, d], "float64")
    layer = nn.TransformerEncoderLayer(d, heads, ff, norm_first=norm_first, name="enc")
    y = layer(x, nn.key_padding_mask(keep))
    g = b.build({"y": y, "loss": gd.reduce_sum(y * r)})
    g = _with_params(g, _encoder_weights(t_layer, d))
    rng = np.random.default_rng(1)
    mask = np.ones((n, s), bool)
    mask[0, 3:] = False
    feeds = {"x": rng.standard_normal((n, s, d)), "keep": mask,
             "r": rng.standard_normal((n, s, d))}
    wrt = ["x"] + sorted(layer.parameters(b))
    ours = gd.run(passes.grad(g, "loss", wrt), feeds)
    tx = torch.tensor(feeds["x"], requires_grad=True)
    ty = t_layer(tx, src_key_padding_mask=torch.tensor(~mask))
    (ty * torch.tensor(feeds["r"])).sum().backward()
    np.testing.assert_allclose(ours["y"], ty.detach().numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours["x_grad"], tx.grad.numpy(), rtol=1e-9, atol=1e-10)
    for name in wrt[1:]:
        np.testing.assert_allclose(ours[f"{name}_grad"], _torch_grad_of(t_layer, name, d),
                                   rtol=1e-9, atol=1e-10, err_msg=name)


def test_causal_attention_matches_torch():
    d, heads, s = 6, 3, 4
    torch.manual_seed(1)
    t_mha = torch.nn.MultiheadAttention(d, heads, batch_first=True).double()
    b = gd.GraphBuilder("mha")
    x = b.input("x", ["N", s, d], "float64")
    y = nn.MultiHeadAttention(d, heads, causal=True, name="enc.attn")(x)
    g = _with_params(b.build({"y": y}), {k: v for k, v in _encoder_weights(
        _AsEncoder(t_mha), d).items() if ".attn." in k})
    xv = np.random.default_rng(2).standard_normal((2, s, d))
    causal = torch.triu(torch.ones(s, s, dtype=torch.bool), 1)
    tx = torch.tensor(xv)
    want = t_mha(tx, tx, tx, attn_mask=causal, need_weights=False)[0].detach().numpy()
    np.testing.assert_allclose(gd.run(g, {"x": xv})["y"], want, rtol=1e-10, atol=1e-12)


class _AsEncoder:
    """Just enough of an encoder layer around a MultiheadAttention for _encoder_weights."""

    def __init__(self, mha):
        lin = torch.nn.Linear(1, 1).double()
        ln = torch.nn.LayerNorm(1).double()
        self.self_attn, self.linear1, self.linear2, self.norm1, self.norm2 = \
            mha, lin, lin, ln, ln


def test_embedding_gradient_is_a_scatter_add_of_rows():
    b = gd.GraphBuilder("emb")
    ids = b.input("ids", ["N", 4], "int64")
    r = b.input("r", ["N", 4, 3], "float64")
    emb = nn.Embedding(6, 3, dtype="float64", name="emb")
    loss = gd.reduce_sum(emb(ids) * r)
    gg = passes.grad(b.build({"loss": loss}), "loss", ["emb.W"])
    ops = {n.op for n in gg.nodes}
    assert "scatter_add" in ops and "matmul" not in ops and "one_hot_values" not in ops
    idv = np.array([[0, 2, 2, 5], [2, 1, 0, 0]])
    rv = np.random.default_rng(3).standard_normal((2, 4, 3))
    want = np.zeros((6, 3))
    for i, row in zip(idv.reshape(-1), rv.reshape(-1, 3)):
        want[i] += row  # repeated ids accumulate
    for backend in ("numpy", "ort"):
        got = gd.run(gg, {"ids": idv, "r": rv}, backend=backend)["emb.W_grad"]
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=backend)


def test_depthwise_conv_and_global_pool_match_torch():
    torch.manual_seed(2)
    t_conv = torch.nn.Conv2d(4, 8, 3, padding=1, groups=4).double()
    b = gd.GraphBuilder("dw")
    x = b.input("x", ["N", 4, 5, 5], "float64")
    y = nn.GlobalAvgPool()(nn.relu6(nn.DepthwiseConv2d(4, 3, padding=1, multiplier=2,
                                                       name="dw")(x)))
    g = _with_params(b.build({"y": y}), {"dw.W": t_conv.weight.detach().numpy(),
                                         "dw.b": t_conv.bias.detach().numpy()})
    xv = np.random.default_rng(4).standard_normal((2, 4, 5, 5)) * 3
    want = torch.nn.functional.relu6(t_conv(torch.tensor(xv))).mean((2, 3)).detach().numpy()
    np.testing.assert_allclose(gd.run(g, {"x": xv})["y"], want, rtol=1e-10, atol=1e-12)
