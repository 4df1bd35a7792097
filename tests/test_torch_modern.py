"""Modern architectures exported by PyTorch (TorchScript exporter, random weights, nothing
downloaded): transformer-encoder classifiers (GELU, LayerNorm, padding and causal masks), a
GPT-style decoder block (embeddings, Trilu causal mask, tanh GELU), a MobileNetV2-style net
(ReLU6 as Clip, depthwise convs, inverted residuals) and a hard-swish/squeeze-excitation net.
Imported by graphdl; gradients of the loss (computed in forward) by ``passes.grad`` match
torch autograd in both engines; graphdl's re-exported inference and training graphs run in
stock onnxruntime at batch sizes 1, 7 and 64 from one file."""
from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest

import graphdl as gd
import passes

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional
S, VOCAB = 6, 20


class EncoderClassifier(nn.Module):
    def __init__(self, norm_first: bool, causal: bool):
        super().__init__()
        self.embed = nn.Linear(4, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head, self.causal = nn.Linear(16, 3), causal

    def logits(self, x, pad):
        mask = nn.Transformer.generate_square_subsequent_mask(S) if self.causal else None
        h = self.encoder(self.embed(x), mask=mask, src_key_padding_mask=pad,
                         is_causal=self.causal)
        return self.head(h.mean(1))


class GPTBlock(nn.Module):
    """Token and position embeddings, one pre-norm causal self-attention block, tied-free
    output projection, next-token cross-entropy."""

    def __init__(self, d: int = 16, heads: int = 2):
        super().__init__()
        self.tok, self.pos = nn.Embedding(VOCAB, d), nn.Parameter(torch.randn(S, d) * 0.1)
        self.ln1, self.ln2, self.lnf = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU("tanh"),
                                          nn.Linear(4 * d, d)), nn.Linear(d, VOCAB)
        self.heads, self.d = heads, d

    def logits(self, ids):
        n, s = ids.shape
        x = self.tok(ids) + self.pos[:s]
        q, k, v = self.qkv(self.ln1(x)).split(self.d, dim=2)
        q, k, v = (t.view(n, s, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        att = q @ k.transpose(-2, -1) / (self.d // self.heads) ** 0.5
        future = torch.triu(torch.ones(s, s, dtype=torch.bool), 1)
        att = F.softmax(att.masked_fill(future, float("-inf")), -1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(n, s, self.d))
        x = x + self.fc(self.ln2(x))
        return self.out(self.lnf(x))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4):
        super().__init__()
        hid = cin * expand
        self.body = nn.Sequential(
            nn.Conv2d(cin, hid, 1, bias=False), nn.BatchNorm2d(hid), nn.ReLU6(),
            nn.Conv2d(hid, hid, 3, stride, 1, groups=hid, bias=False), nn.BatchNorm2d(hid),
            nn.ReLU6(), nn.Conv2d(hid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.skip else self.body(x)


class MobileNetV2ish(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
            InvertedResidual(8, 8, 1), InvertedResidual(8, 12, 2),
            nn.Conv2d(12, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU6())
        self.head = nn.Linear(24, 5)

    def logits(self, x):
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, r: int = 4):
        super().__init__()
        self.down, self.up = nn.Conv2d(c, c // r, 1), nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.up(F.relu(self.down(s))))


class HardSwishSE(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, 1, 1), nn.Hardswish(), SqueezeExcite(8),
            nn.Conv2d(8, 8, 3, 2, 1, groups=8), nn.Hardswish())
        self.head = nn.Linear(8, 5)

    def logits(self, x):
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class WithLoss(nn.Module):
    """loss = cross-entropy of the model's logits (next token for the GPT block)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args):
        *ins, labels = args
        z = self.model.logits(*ins)
        return F.cross_entropy(z.reshape(-1, z.shape[-1]), labels.reshape(-1))


class Logits(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *ins):
        return self.model.logits(*ins)


def _feeds(kind: str, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind.startswith("encoder"):
        pad = np.zeros((n, S), bool)
        pad[::2, S - 2:] = True  # every other sequence ends in two padding tokens
        return {"x": rng.standard_normal((n, S, 4)).astype(np.float32), "pad": pad,
                "labels": rng.integers(0, 3, n)}
    if kind == "gpt":
        return {"ids": rng.integers(0, VOCAB, (n, S)), "labels": rng.integers(0, VOCAB, (n, S))}
    return {"x": rng.standard_normal((n, 3, 12, 12)).astype(np.float32),
            "labels": rng.integers(0, 5, n)}


MODELS = {
    "encoder-postnorm": lambda: EncoderClassifier(False, False),
    "encoder-prenorm-causal": lambda: EncoderClassifier(True, True),
    "gpt": GPTBlock,
    "mobilenetv2": MobileNetV2ish,
    "hardswish-se": HardSwishSE,
}


def _export(module: nn.Module, kind: str, path, loss: bool, dtype=np.float32) -> list[str]:
    fd = _feeds(kind, 3, 0)
    if not loss:
        fd.pop("labels")
    names = list(fd)
    args = tuple(torch.from_numpy(v.astype(dtype) if v.dtype == np.float32 else v)
                 for v in fd.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), opset_version=17, dynamo=False,
                          do_constant_folding=False, input_names=names,
                          output_names=["loss" if loss else "logits"],
                          dynamic_axes={k: {0: "N"} for k in names})
    return names


def _model(kind: str, dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    m = MODELS[kind]().to(dtype)
    with torch.no_grad():  # no two parameters equal (the exporter merges equal initializers:
        for p in m.parameters():  # TransformerEncoder's layers start as copies of one)
            p.add_(torch.randn_like(p) * 0.1)
    for mod in m.modules():  # non-trivial BatchNorm statistics and affine parameters
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


def _torch_grads(net: nn.Module, fd: dict, dtype=np.float32) -> tuple[float, dict]:
    net.zero_grad()
    loss = net(*(torch.from_numpy(v.astype(dtype) if v.dtype.kind == "f" else v)
                 for v in fd.values()))
    loss.backward()
    return float(loss.detach()), {k: p.grad.numpy() for k, p in net.named_parameters()}


def _assert_grads(got: dict, loss: float, grads: dict, tol: float) -> None:
    np.testing.assert_allclose(got["loss"], loss, rtol=tol)
    for name, want in grads.items():
        err = np.max(np.abs(got[f"{name}_grad"] - want)) / max(np.max(np.abs(want)), 1e-12)
        assert err <= tol, f"{name}: relative error {err:.2e}"


def _session(model) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _cast(fd: dict, dtype) -> dict:
    return {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in fd.items()}


@pytest.mark.parametrize("kind", list(MODELS))
def test_gradients_match_autograd_at_batch_sizes_1_7_64(tmp_path, kind):
    """float32, 1e-4 relative (max error over the gradient's max): graphdl's interpreter at
    batch 7, and one exported training graph in onnxruntime at batch sizes 1, 7 and 64."""
    net = WithLoss(_model(kind)).eval()
    _export(net, kind, tmp_path / "m.onnx", loss=True)
    g = gd.from_onnx(tmp_path / "m.onnx")
    params = [k for k, _ in net.named_parameters()]
    assert set(params) <= set(g.params), sorted(set(params) - set(g.params))
    gg = passes.grad(g, "loss", params)
    fd = _feeds(kind, 7, 1)
    _assert_grads(gd.run(gg, fd), *_torch_grads(net, fd), 1e-4)
    sess = _session(gd.to_onnx(gg))
    outs = [o.name for o in sess.get_outputs()]
    for n in (1, 7, 64):
        fd = _feeds(kind, n, n)
        _assert_grads(dict(zip(outs, sess.run(None, fd))), *_torch_grads(net, fd), 1e-4)


@pytest.mark.parametrize("kind", ["gpt", "mobilenetv2"])
def test_float64_gradients_match_autograd(tmp_path, kind):
    """1e-9 relative, where the export allows it: the TorchScript exporter refuses a float64
    TransformerEncoder with a key padding mask ("Unsupported type for attn_mask"), and ONNX
    HardSigmoid's alpha is a float32 attribute (1/6 to 3e-8), so the SE block is exact to
    ~1e-8 only."""
    net = WithLoss(_model(kind, torch.float64)).eval()
    _export(net, kind, tmp_path / "m.onnx", loss=True, dtype=np.float64)
    g = gd.from_onnx(tmp_path / "m.onnx")
    params = [k for k, _ in net.named_parameters()]
    fd = _cast(_feeds(kind, 5, 2), np.float64)
    got = gd.run(passes.grad(g, "loss", params), fd)
    _assert_grads(got, *_torch_grads(net, fd, np.float64), 1e-9)


@pytest.mark.parametrize("kind", list(MODELS))
def test_inference_graph_runs_in_onnxruntime_at_batch_sizes_1_7_64(tmp_path, kind):
    model = _model(kind)
    names = _export(Logits(model).eval(), kind, tmp_path / "m.onnx", loss=False)
    g = gd.from_onnx(tmp_path / "m.onnx")
    assert g.by_name[names[0]].type.shape[0] == "N" or str(g.by_name[names[0]].type.shape[0]) \
        == "N"
    sess = _session(gd.to_onnx(g))
    for n in (1, 7, 64):
        fd = {k: v for k, v in _feeds(kind, n, n).items() if k != "labels"}
        with torch.no_grad():
            want = model.logits(*(torch.from_numpy(v) for v in fd.values())).numpy()
        np.testing.assert_allclose(sess.run(["logits"], fd)[0], want, rtol=1e-4, atol=1e-5)
