"""Property tests: random well-typed graphs give the same outputs after the default pipeline (run
to its fixed point) as before it, in the interpreter and in onnxruntime (float64, so only
rounding differs); so do their gradient graphs."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphdl as gd
import passes

D = 4


def _unary(op):
    return lambda b, a, c: op(a)


#: op name -> builder of one new value from two pool values (a, c) of shape [N, D]
OPS = {
    "neg": _unary(gd.neg),
    "tanh": _unary(gd.tanh),
    "sigmoid": _unary(gd.sigmoid),
    "relu": _unary(gd.relu),
    "abs": _unary(gd.abs),
    "exp_tanh": lambda b, a, c: gd.exp(gd.tanh(a)),
    "add": lambda b, a, c: a + c,
    "sub": lambda b, a, c: a - c,
    "mul": lambda b, a, c: a * c,
    "max": lambda b, a, c: gd.maximum(a, c),
    "div": lambda b, a, c: a / (1.0 + c * c),
    "mul1_add0": lambda b, a, c: a * 1.0 + 0.0,
    "double_t": lambda b, a, c: gd.transpose(gd.transpose(a)),
    "reshape_chain": lambda b, a, c: gd.reshape(gd.reshape(a, [-1, 2, 2]), [-1, D]),
    "dense": lambda b, a, c: a @ b.w + b.bias,
    "dense_t": lambda b, a, c: gd.matmul(a, gd.transpose(b.w)),
    "relu_mask": lambda b, a, c: gd.where(a > 0.0, c, 0.0),
    "log_softmax": lambda b, a, c: gd.log(gd.softmax(a, 1)),
    "row_sum": lambda b, a, c: a - gd.reduce_sum(a, 1, keepdims=True),
    "same_twice": lambda b, a, c: gd.tanh(a) * gd.tanh(a),
}
NAMES = sorted(OPS)

program = st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 50), st.integers(0, 50)),
                   min_size=1, max_size=12)


def _build(prog) -> gd.Graph:
    b = gd.GraphBuilder("random")
    pool = [b.input("x", ["N", D], "float64"), b.input("y", ["N", D], "float64")]
    b.w = b.input("w", [D, D], "float64")
    b.bias = b.input("bias", [D], "float64")
    for name, i, j in prog:
        pool.append(OPS[name](b, pool[i % len(pool)], pool[j % len(pool)]))
    outs = {"out0": pool[-1]}
    if len(pool) > 3:
        outs["out1"] = pool[len(pool) // 2 + 1]
    return b.build(outs)


def _feeds(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((3, D)), "y": rng.standard_normal((3, D)),
            "w": rng.standard_normal((D, D)) * 0.5, "bias": rng.standard_normal(D)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program)
def test_optimised_graph_computes_the_same_in_both_engines(prog):
    g = _build(prog)
    opt = passes.optimize(g, fixed_point=True)  # also: the pipeline converges
    assert [v.name for v in opt.outputs] == [v.name for v in g.outputs]
    assert len(opt.nodes) <= len(g.nodes)
    feeds = _feeds()
    want = gd.run(g, feeds)
    for engine in ("numpy", "ort"):
        got = gd.run(opt, feeds, backend=engine)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{engine} {k}")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program)
def test_optimised_gradient_graph_computes_the_same(prog):
    g = _build(prog)
    b = gd.GraphBuilder.from_graph(g)
    total = sum((gd.reduce_sum(b.tensor(v) * b.tensor(v)) for v in g.outputs[1:]),
                gd.reduce_sum(b.tensor(g.outputs[0]) * b.tensor(g.outputs[0])))
    gg = passes.grad(b.build({"loss": total}), "loss", ["x", "w"])
    opt = passes.optimize(gg)
    feeds = _feeds(1)
    want = gd.run(gg, feeds, backend="ort")
    got = gd.run(opt, feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12, err_msg=k)
