"""Table-driven op tests: every registered op has sample rows, and from each row:
the inferred type equals the kernel's output, the VJP equals central finite differences in
float64 (and second order for smooth ops), and onnxruntime equals the interpreter."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl.core.registry import all_ops
from tests.op_samples import Sample, all_samples, assert_same, fits

SAMPLES = all_samples()


def _params(pred):
    """pytest params for the rows satisfying ``pred``, with stable readable ids."""
    return [pytest.param(s, id=f"{i}-{s.id}") for i, s in enumerate(SAMPLES) if pred(s)]


def _cast(a: np.ndarray, dtype) -> np.ndarray:
    return a.astype(dtype) if a.dtype.kind == "f" else a


def build(s: Sample, dtype=np.float64) -> tuple[gd.Graph, dict[str, np.ndarray]]:
    """A graph applying the sample's op to its inputs (constants where the row says so)."""
    b = gd.GraphBuilder(s.op)
    ins, feeds = [], {}
    for i, a in enumerate(s.inputs):
        if a is None:
            ins.append(None)
        elif i in s.const_inputs():
            ins.append(b.const(_cast(a, dtype)))
        else:
            feeds[f"in{i}"] = _cast(a, dtype)
            ins.append(b.input(f"in{i}", a.shape, feeds[f"in{i}"].dtype))
    outs = b.apply(s.op, ins, **s.attrs)
    return b.build({f"out{k}": t for k, t in enumerate(outs)}), feeds


#: ops without a kernel, so without rows here, and where they are tested instead
NO_KERNEL = {"gradient": "a request that passes.expand_gradients replaces: "
                         "tests/test_gradient_requests.py"}


def test_every_op_has_samples():
    sampled = {s.op for s in SAMPLES}
    missing = sorted(set(all_ops()) - sampled - set(NO_KERNEL))
    assert not missing, f"ops without sample rows: {missing}"


@pytest.mark.parametrize("s", _params(lambda s: True))
def test_inferred_type_matches_kernel(s: Sample):
    g, feeds = build(s)
    got = gd.run(g, feeds)
    for v in g.outputs:
        arr = np.asarray(got[v.name])
        assert v.type.dtype.np == arr.dtype, f"{v.name}: inferred {v.type}, kernel {arr.dtype}"
        assert fits(v.type.shape, arr.shape), f"{v.name}: inferred {v.type}, kernel {arr.shape}"


def _loss_graph(s: Sample) -> tuple[gd.Graph, dict, list[str]]:
    """loss = sum_k <out_k, r_k> for random r_k, over the op's float outputs."""
    g, feeds = build(s)
    b = gd.GraphBuilder.from_graph(g)
    rng = np.random.default_rng(1)
    total = None
    for v in g.outputs:
        if not v.type.dtype.is_float:
            continue
        t = b.tensor(v)
        r = rng.standard_normal(np.shape(gd.run(g, feeds)[v.name])).astype(v.type.dtype.np)
        term = gd.reduce_sum(t * b.const(r))
        total = term if total is None else total + term
    wrt = [n for n, a in feeds.items() if a.dtype.kind == "f"]
    return b.build({"loss": total}), feeds, wrt


def _fd(f, feeds: dict, wrt: list[str], dirs: dict, eps: float = 1e-6) -> float:
    plus = dict(feeds, **{n: feeds[n] + eps * dirs[n] for n in wrt})
    minus = dict(feeds, **{n: feeds[n] - eps * dirs[n] for n in wrt})
    return (f(plus) - f(minus)) / (2 * eps)


@pytest.mark.parametrize("s", _params(lambda s: s.grad))
def test_vjp_matches_finite_differences(s: Sample):
    lg, feeds, wrt = _loss_graph(s)
    assert wrt, "a differentiable sample needs a float input"
    gg = passes.grad(lg, "loss", wrt)
    grads = gd.run(gg, feeds)
    rng = np.random.default_rng(2)
    dirs = {n: rng.standard_normal(feeds[n].shape) for n in wrt}
    analytic = sum(float(np.sum(grads[f"{n}_grad"] * dirs[n])) for n in wrt)
    numeric = _fd(lambda f: float(gd.run(lg, f)["loss"]), feeds, wrt, dirs)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("s", _params(lambda s: s.second_order))
def test_second_order_matches_finite_differences(s: Sample):
    """d/dv <grad(x), u> by the gradient of the gradient graph, and by finite differences."""
    lg, feeds, wrt = _loss_graph(s)
    gg = passes.grad(lg, "loss", wrt)
    rng = np.random.default_rng(3)
    u = {n: rng.standard_normal(feeds[n].shape) for n in wrt}
    v = {n: rng.standard_normal(feeds[n].shape) for n in wrt}
    b = gd.GraphBuilder.from_graph(gg)
    gu = None
    for n in wrt:
        term = gd.reduce_sum(b.tensor(gg.value(f"{n}_grad")) * b.const(u[n]))
        gu = term if gu is None else gu + term
    sg = b.build({"gu": gu})
    hg = passes.grad(sg, "gu", wrt)
    hess = gd.run(hg, feeds)
    names = [o.name for o in hg.outputs[len(sg.outputs):]]
    analytic = sum(float(np.sum(hess[name] * v[n])) for name, n in zip(names, wrt))
    numeric = _fd(lambda f: float(gd.run(sg, f)["gu"]), feeds, wrt, v, eps=1e-5)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("s", _params(lambda s: s.ort))
def test_onnxruntime_matches_interpreter(s: Sample):
    dtype = np.float32 if s.ort == "f32" else np.float64
    g, feeds = build(s, dtype)
    ours = gd.run(g, feeds)
    theirs = gd.run(g, feeds, backend="ort")
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=s.rtol, atol=s.atol)
    for name in ours:
        assert np.asarray(ours[name]).dtype == theirs[name].dtype
        assert_same(ours[name], theirs[name], **tol, err_msg=name)
