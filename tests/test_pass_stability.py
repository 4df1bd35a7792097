"""Stability rewrites: for each, the golden IR after the rewrite, an input where the original
graph overflows to inf/nan while the rewritten one stays finite, and PyTorch as the reference
value (both engines)."""
import numpy as np
import pytest

import graphdl as gd
from graphdl.core.ir import Graph
from passes import DeadCodeElimination, PassManager, StabilityRewrites

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _stable(g: Graph) -> Graph:
    return PassManager([StabilityRewrites(), DeadCodeElimination()]).run(g).graph


def _check(g: Graph, feeds: dict, name: str, want: np.ndarray) -> Graph:
    """The original overflows; the rewritten one equals ``want`` in both engines."""
    out = _stable(g)
    with np.errstate(all="ignore"):
        bad = gd.run(g, feeds)[name]
    assert not np.all(np.isfinite(bad)), "the test input must break the unrewritten graph"
    for engine in ("numpy", "ort"):
        got = gd.run(out, feeds, backend=engine)[name]
        assert np.all(np.isfinite(got)), engine
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=engine)
    return out


def test_log_softmax():
    b = gd.GraphBuilder("ls")
    z = b.input("z", ["N", 3])
    g = b.build({"y": gd.log(gd.softmax(z))})
    zv = np.array([[0.0, 200.0, -50.0], [1.0, 2.0, 3.0]], np.float32)
    out = _check(g, {"z": zv}, "y", F.log_softmax(torch.tensor(zv), -1).numpy())
    assert str(out) == """graph ls(
    %z:f32[N,3],
) {
  %y:f32[N,3] = log_softmax(%z, axis=-1)
  return %y
}"""


def test_softmax_cross_entropy_becomes_the_stable_loss_op():
    b = gd.GraphBuilder("ce")
    z, t = b.input("z", ["N", 3]), b.input("t", ["N", 3])
    g = b.build({"loss": gd.reduce_mean(-gd.reduce_sum(t * gd.log(gd.softmax(z, 1)), 1))})
    zv = np.array([[0.0, 300.0, -20.0], [2.0, 1.0, 0.0]], np.float32)
    tv = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    want = F.cross_entropy(torch.tensor(zv), torch.tensor([0, 2])).numpy()
    out = _check(g, {"z": zv, "t": tv}, "loss", want)
    assert str(out) == """graph ce(
    %z:f32[N,3],
    %t:f32[N,3],
) {
  %loss:f32[] = softmax_cross_entropy_onehot(%z, %t, reduction='mean')
  return %loss
}"""


def test_log_sigmoid_becomes_its_logits_form():
    b = gd.GraphBuilder("lsig")
    x = b.input("x", ["N"])
    g = b.build({"y": gd.log(gd.sigmoid(x))})
    xv = np.array([-200.0, -3.0, 0.0, 5.0, 300.0], np.float32)
    out = _check(g, {"x": xv}, "y", F.logsigmoid(torch.tensor(xv)).numpy())
    assert [n.op for n in out.nodes] == ["constant", "neg", "relu", "abs", "neg", "exp", "add",
                                         "log", "add", "neg"]


def test_bce_on_sigmoid_becomes_bce_with_logits():
    b = gd.GraphBuilder("bce")
    z, t = b.input("z", ["N"]), b.input("t", ["N"])
    g = b.build({"loss": gd.binary_cross_entropy(gd.sigmoid(z), t)})
    zv = np.array([50.0, -1.0, 2.0], np.float32)
    tv = np.array([0.0, 1.0, 1.0], np.float32)
    want = F.binary_cross_entropy_with_logits(torch.tensor(zv), torch.tensor(tv)).numpy()
    out = _check(g, {"z": zv, "t": tv}, "loss", want)
    assert str(out) == """graph bce(
    %z:f32[N],
    %t:f32[N],
) {
  %loss:f32[] = binary_cross_entropy_with_logits(%z, %t, reduction='mean')
  return %loss
}"""


def test_rewrites_keep_values_on_ordinary_inputs():
    """Where nothing overflows, the rewritten graphs compute what the originals did."""
    b = gd.GraphBuilder("all")
    z, t = b.input("z", ["N", 4]), b.input("t", ["N", 4])
    ce = gd.reduce_sum(-gd.reduce_sum(gd.log(gd.softmax(z, -1)) * t, -1))
    g = b.build({"ce": ce, "ls": gd.log(gd.sigmoid(z)),
                 "bce": gd.binary_cross_entropy(gd.sigmoid(z), t, reduction="sum")})
    out = _stable(g)
    assert {n.op for n in out.nodes} >= {"softmax_cross_entropy_onehot",
                                         "binary_cross_entropy_with_logits"}
    rng = np.random.default_rng(0)
    feeds = {"z": rng.standard_normal((5, 4)).astype(np.float32),
             "t": rng.uniform(size=(5, 4)).astype(np.float32)}
    want, got = gd.run(g, feeds), gd.run(out, feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)
