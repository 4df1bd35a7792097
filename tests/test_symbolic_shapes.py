"""Shape tensors computed in a graph are followed symbolically (the chains PyTorch's exporter
writes for flatten/view), gradients through that plumbing match finite differences, the exported
model runs in onnxruntime at several batch sizes, and shape errors name the op, the shapes and
the user's line."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphdl as gd
import passes
from graphdl.onnx.export import DEFAULT_OPSET, MIN_OPSET
from graphdl.core.types import Sym, dim_mul

N = Sym.var("N")
BIG = 2**63 - 1
BATCHES = (1, 7, 128)


def i64(*v: int) -> np.ndarray:
    return np.array(v, np.int64)


def run_both(g: gd.Graph, feeds: dict) -> dict:
    """The interpreter's outputs, after checking onnxruntime agrees and the types fit."""
    ours = gd.run(g, feeds)
    theirs = gd.run(g, feeds, backend="ort")
    for v in g.outputs:
        np.testing.assert_allclose(ours[v.name], theirs[v.name], rtol=1e-12, atol=1e-12)
        shape = v.type.shape
        assert len(shape) == theirs[v.name].ndim
        for d, got in zip(shape, theirs[v.name].shape):
            assert d is None or isinstance(d, Sym) or d == got, (v, theirs[v.name].shape)
    return ours


def check_grad(g: gd.Graph, feeds: dict, wrt: list[str], loss: str = "loss") -> None:
    """d loss along a random direction: gradient graph (both engines) == central differences."""
    gg = passes.grad(g, loss, wrt)
    grads = run_both(gg, feeds)
    names = [v.name for v in gg.outputs[len(g.outputs):]]  # NAME_grad, unless that was taken
    rng = np.random.default_rng(7)
    dirs = {n: rng.standard_normal(feeds[n].shape) for n in wrt}
    analytic = sum(float(np.sum(grads[gn] * dirs[n])) for gn, n in zip(names, wrt))
    eps = 1e-6
    f = {s: gd.run(g, dict(feeds, **{n: feeds[n] + s * eps * dirs[n] for n in wrt}))[loss]
         for s in (1, -1)}
    np.testing.assert_allclose(analytic, (f[1] - f[-1]) / (2 * eps), rtol=1e-6, atol=1e-8)


def weighted_sum(b: gd.GraphBuilder, t: gd.Tensor, shape: tuple, seed: int = 1) -> gd.Tensor:
    """sum(t * w) for a fixed random w broadcast over t (so every gradient entry differs)."""
    w = np.random.default_rng(seed).standard_normal(shape)
    return gd.reduce_sum(t * b.const(w))


def feeds_for(n: int, *shapes: tuple, names: str = "xyz") -> dict:
    rng = np.random.default_rng(n)
    return {nm: rng.standard_normal((n,) + s) for nm, s in zip(names, shapes)}


# -- the exporter's chains ---------------------------------------------------------------------


def _torch_flatten(b: gd.GraphBuilder, x: gd.Tensor) -> gd.Tensor:
    """x.view(x.size(0), -1) as torch.onnx writes it."""
    n = gd.unsqueeze(gd.gather(gd.shape(x), 0), [0])
    return gd.reshape(x, gd.concat([n, b.const(i64(-1))], 0))


def test_shape_gather_unsqueeze_concat_reshape_gives_exact_symbolic_dims():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 3, 4], "float64")
    s = gd.shape(x)
    assert s.type.known == (N, 3, 4)
    y = _torch_flatten(b, x)
    assert y.shape == (N, 12) and isinstance(y.shape[0], Sym)
    g = b.build({"y": y})
    out = gd.to_onnx(g).graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in out] == ["N", 12]
    for n in BATCHES:
        feeds = feeds_for(n, (3, 4))
        np.testing.assert_array_equal(run_both(g, feeds)["y"], feeds["x"].reshape(n, 12))


def test_mul_and_div_of_shape_elements():
    """x.view(n, c * h) then back with h = (c * h) / c: products and exact quotients."""
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 3, 4], "float64")
    s = gd.shape(x)
    n = gd.unsqueeze(gd.gather(s, 0), [0])
    ch = gd.gather(s, 1) * gd.gather(s, 2)
    assert ch.type.known == (12,)
    y = gd.reshape(x, gd.concat([n, gd.unsqueeze(ch, [0])], 0))
    h = gd.gather(gd.shape(y), 1) / gd.gather(s, 1)
    z = gd.reshape(y, gd.concat([n, gd.unsqueeze(h, [0]), b.const(i64(-1))], 0))
    batch = gd.gather(gd.shape(z), [0]) * b.const(i64(2))
    assert (y.shape, z.shape, batch.type.known) == ((N, 12), (N, 4, 3), (dim_mul(N, 2),))
    g = b.build({"y": y, "z": z, "batch": batch})
    for n_ in BATCHES:
        feeds = feeds_for(n_, (3, 4))
        out = run_both(g, feeds)
        np.testing.assert_array_equal(out["z"], feeds["x"].reshape(n_, 4, 3))
        np.testing.assert_array_equal(out["batch"], [2 * n_])


def test_expand_and_constant_of_shape_follow_computed_shapes():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 3], "float64")
    ones = gd.constant_of_shape(gd.shape(x), 1.0, "float64")
    n = gd.slice_(gd.shape(x), [0], [1])
    bias = gd.expand(b.const(np.arange(4.0).reshape(1, 4)),
                     gd.concat([n, b.const(i64(4))], 0))
    assert (ones.shape, bias.shape, n.type.known) == ((N, 3), (N, 4), (N,))
    g = b.build({"ones": ones, "bias": bias})
    for n_ in BATCHES:
        out = run_both(g, feeds_for(n_, (3,)))
        np.testing.assert_array_equal(out["ones"], np.ones((n_, 3)))
        np.testing.assert_array_equal(out["bias"], np.tile(np.arange(4.0), (n_, 1)))


def test_slices_of_shape_vectors_are_known():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 3, 4, 5], "float64")
    s = gd.shape(x)
    assert gd.slice_(s, [1], [BIG]).type.known == (3, 4, 5)
    assert gd.slice_(s, [-1], [-BIG - 1], steps=[-1]).type.known == (5, 4, 3, N)
    assert gd.slice_(s, [-2], [-1]).type.known == (4,)
    assert gd.slice_(s, [0], [100], steps=[2]).type.known == (N, 4)
    spatial = gd.slice_(s, [2], [BIG])  # torch: x.view(-1, *x.shape[2:])
    y = gd.reshape(x, gd.concat([b.const(i64(-1)), spatial], 0))
    assert y.shape == (dim_mul(N, 3), 4, 5)
    g = b.build({"y": y})
    for n in BATCHES:
        feeds = feeds_for(n, (3, 4, 5))
        np.testing.assert_array_equal(run_both(g, feeds)["y"], feeds["x"].reshape(-1, 4, 5))


def test_range_over_a_symbolic_dim():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 2], "float64")
    r = gd.arange(0, gd.reshape(gd.slice_(gd.shape(x), [0], [1]), []))
    down = gd.arange(b.const(np.array(2.0)), 0.5, -0.25)
    assert r.shape == (N,) and down.shape == (None,)
    g = b.build({"r": r, "down": down})
    for n in BATCHES:
        out = run_both(g, feeds_for(n, (2,)))
        np.testing.assert_array_equal(out["r"], np.arange(n))
        np.testing.assert_allclose(out["down"], [2.0, 1.75, 1.5, 1.25, 1.0, 0.75])


def test_full_range_slices_keep_symbolic_dims_and_partial_ones_do_not():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 6], "float64")
    assert gd.slice_(x, [0], [BIG]).shape == (N, 6)
    assert gd.slice_(x, [-BIG - 1, 1], [BIG, 5]).shape == (N, 4)
    assert gd.slice_(x, [BIG], [-BIG - 1], steps=[-1]).shape == (N, 6)
    assert gd.slice_(x, [1], [BIG]).shape == (None, 6)
    assert gd.slice_(x, [0], [BIG], steps=[2]).shape == (None, 6)
    assert gd.slice_(x, [0], [-1]).shape == (None, 6)
    assert gd.slice_(x, [-1], [-7], axes=[-1], steps=[-2]).shape == (N, 3)
    starts = b.input("starts", [1], "int64")
    assert gd.slice_(x, starts, [4], axes=[1]).shape == (N, None)
    assert gd.slice_(x, starts, [4]).shape == (None, 6)


# -- gradients through the plumbing ------------------------------------------------------------


def test_gradient_through_view_and_slices_of_a_symbolic_batch():
    """Flatten by computed shape, slice with steps (pad and scatter VJPs), reverse the batch."""
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 3, 4], "float64")
    y = _torch_flatten(b, x)  # [N,12]
    a = gd.slice_(y, [1], [12], axes=[1], steps=[3])  # [N,4], scatter path
    c = gd.slice_(y, [2], [-2], axes=[-1])  # [N,8], pad path
    r = gd.slice_(x, [-1, 2], [-BIG - 1, -BIG - 1], axes=[0, 2], steps=[-1, -1])  # [N,3,3]
    tail = gd.slice_(x, [1], [BIG])  # [?,3,4]: batch minus one row
    assert (a.shape, c.shape, r.shape) == ((N, 4), (N, 8), (N, 3, 3))
    loss = (weighted_sum(b, a * a, (4,)) + weighted_sum(b, gd.exp(c), (8,), 2)
            + weighted_sum(b, r * r, (3, 3), 3) + gd.reduce_sum(tail * tail * tail))
    g = b.build({"loss": loss})
    for n in BATCHES:
        check_grad(g, feeds_for(n, (3, 4)), ["x"])


def test_gradient_of_slices_with_bounds_computed_at_run_time():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 5], "float64")
    lo = gd.gather(gd.shape(x), [1]) / b.const(i64(5))  # [1]
    hi = gd.slice_(gd.shape(x), [0], [1]) - b.const(i64(1))  # [N-1]: unknown at build time
    y = gd.slice_(x, gd.concat([lo, lo], 0), gd.concat([hi, b.const(i64(-1))], 0),
                  steps=[1, 2])
    assert y.shape == (None, 2)  # the ends of axis 0 depend on N at run time
    g = b.build({"loss": weighted_sum(b, y * y, (1, 2))})
    for n in (3, 7, 128):
        check_grad(g, feeds_for(n, (5,)), ["x"])
        ref = np.zeros((n, 5))
        x_ = feeds_for(n, (5,))["x"]
        w = np.random.default_rng(1).standard_normal((1, 2))
        ref[1:n - 1, 1:4:2] = 2 * x_[1:n - 1, 1:4:2] * w  # hand-derived d sum(w * y^2)
        got = gd.run(passes.grad(g, "loss", ["x"]), {"x": x_}, backend="ort")["x_grad"]
        np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_gradient_of_concat_along_symbolic_axes():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 3], "float64")
    y = b.input("y", ["M", 3], "float64")
    z = b.input("z", [2, 3], "float64")
    c = gd.concat([z, x, z, y], 0)  # static offsets, then symbolic ones
    loss = weighted_sum(b, c * c, (3,)) + weighted_sum(b, gd.concat([x, x], 1), (6,), 2)
    g = b.build({"loss": loss})
    for n, m in ((1, 4), (7, 1), (128, 3)):
        feeds = dict(feeds_for(n, (3,), names="x"), y=np.ones((m, 3)) * 0.5,
                     z=np.arange(6.0).reshape(2, 3))
        check_grad(g, feeds, ["x", "y", "z"])


def test_gradient_of_gather_on_symbolic_dims_accumulates_repeats():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 5, 2], "float64")
    g1 = gd.gather(x, [4, 0, 4, -1], axis=1)  # [N,4,2]
    g2 = gd.gather(x, [[0, 0], [-1, 0]], axis=0)  # [2,2,5,2]
    g3 = gd.gather(x, -2, axis=1)  # [N,2]
    assert (g1.shape, g2.shape, g3.shape) == ((N, 4, 2), (2, 2, 5, 2), (N, 2))
    loss = (weighted_sum(b, g1 * g1, (4, 2)) + weighted_sum(b, g2, (2, 2, 5, 2), 2)
            + weighted_sum(b, gd.exp(g3), (2,), 3))
    g = b.build({"loss": loss})
    for n in BATCHES:
        check_grad(g, feeds_for(n, (5, 2)), ["x"])


def test_scatter_add_axis_matches_a_loop_over_gather_positions():
    b = gd.GraphBuilder()
    base = b.input("base", ["N", 4], "float64")
    upd = b.input("upd", ["N", 2, 3], "float64")
    idx = np.array([[3, -1, 0], [1, 3, 3]], np.int64)
    out = gd.scatter_add_axis(base, idx, upd, axis=-1)
    assert out.shape == (N, 4)
    g = b.build({"out": out})
    for n in BATCHES:
        feeds = dict(base=np.zeros((n, 4)), upd=feeds_for(n, (2, 3))["x"])
        ref = feeds["base"].copy()
        for i in range(n):
            for j, k in np.ndindex(idx.shape):
                ref[i, idx[j, k] % 4] += feeds["upd"][i, j, k]
        np.testing.assert_allclose(run_both(g, feeds)["out"], ref, rtol=1e-12)


def test_slice_vjp_takes_the_simplest_form_that_fits():
    """Unit steps -> Pad; whole axes (a reversal) -> the same slice; other steps -> scatter.
    Each gradient of sum(y) is the indicator of the picked positions."""
    cases = [  # (starts, ends, axes, steps, the op expected, picked columns)
        ([1], [4], [1], None, "pad", [1, 2, 3]),
        ([-1, 5], [-BIG - 1, -7], None, [-1, -1], "slice", range(6)),
        ([0], [6], [1], [2], "scatter_add", [0, 2, 4]),
    ]
    for starts, ends, axes, steps, op, cols in cases:
        b = gd.GraphBuilder()
        x = b.input("x", ["N", 6], "float64")
        y = gd.slice_(x, starts, ends, axes, steps)
        g = passes.grad(b.build({"loss": gd.reduce_sum(y)}), "loss", ["x"])
        ops = {nd.op for nd in g.nodes if nd.grad_of == y.name}
        assert op in ops and (op == "scatter_add") == ("scatter_add" in ops), (op, ops)
        want = np.zeros(6)
        want[list(cols)] = 1.0
        for n in BATCHES:
            out = run_both(g, feeds_for(n, (6,)))
            np.testing.assert_array_equal(out["x_grad"], np.tile(want, (n, 1)))


def test_pad_keeps_symbolic_dims_and_its_gradient_crops():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 3], "float64")
    p = gd.pad(x, [0, 1, 0, 2], value=0.5)
    crop = gd.pad(x, [0, -1, 0, 0])
    assert (p.shape, crop.shape) == ((N, 6), (N, 2))
    loss = weighted_sum(b, p * p, (6,)) + weighted_sum(b, crop * crop * crop, (2,))
    g = b.build({"loss": loss})
    for n in BATCHES:
        feeds = feeds_for(n, (3,))
        check_grad(g, feeds, ["x"])
        padded = run_both(b.build({"p": p}), feeds)["p"]
        np.testing.assert_array_equal(padded[:, 1:4], feeds["x"])
        assert (padded[:, [0, 4, 5]] == 0.5).all()


def test_second_order_through_a_strided_slice_of_the_batch():
    """d/dv <grad(x), u> via the gradient of the gradient graph, and by central differences."""
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 5], "float64")
    y = gd.slice_(x, [1], [BIG], axes=[0], steps=[2])  # rows 1, 3, ...: scatter VJP
    g = b.build({"loss": weighted_sum(b, y * y * y, (5,))})
    gg = passes.grad(g, "loss", ["x"])
    b2 = gd.GraphBuilder.from_graph(gg)
    u = b2.input("u", ["N", 5], "float64")
    sg = b2.build({"gu": gd.reduce_sum(b2.tensor(gg.value("x_grad")) * u)})
    for n in (2, 7, 128):
        check_grad(sg, feeds_for(n, (5,), (5,), names="xu"), ["x"], loss="gu")


@pytest.mark.parametrize("opset", [MIN_OPSET, DEFAULT_OPSET])
def test_gather_and_slice_gradients_export_at_every_opset_end(opset):
    """Gradient graphs of gather, gather_elements and strided slices (scatter-adds) exported
    at the oldest and the default opset agree with the interpreter; the interpreter with
    central differences."""
    import onnxruntime as ort

    b = gd.GraphBuilder()
    x = b.input("x", ["N", 5, 2], "float64")
    y = gd.gather(x, [[4, 0], [4, -1]], axis=1)  # [N,2,2,2]
    z = gd.slice_(x, [0, -1], [BIG, -BIG - 1], axes=[1, 2], steps=[2, -1])  # [N,3,2]
    e = gd.gather_elements(x, b.const(np.array([[[1, 0]], [[0, -1]]])), axis=1)  # [2,1,2]
    loss = (weighted_sum(b, y * y, (2, 2, 2)) + weighted_sum(b, z * z * z, (3, 2), 2)
            + weighted_sum(b, gd.exp(e), (2, 1, 2), 3))
    g = passes.grad(b.build({"loss": loss}), "loss", ["x"])
    model = gd.to_onnx(g, opset=opset)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for n in (2, 7, 128):
        feeds = feeds_for(n, (5, 2))
        ours = gd.run(g, feeds)
        theirs = dict(zip([o.name for o in g.outputs], sess.run(None, feeds)))
        np.testing.assert_allclose(theirs["x_grad"], ours["x_grad"], rtol=1e-12, atol=1e-12)
    check_grad(b.build({"loss": loss}), feeds_for(7, (5, 2)), ["x"])


# -- slice against onnxruntime on random bounds ------------------------------------------------

_bound = st.one_of(st.integers(-8, 8), st.sampled_from([BIG, -BIG - 1, 2**62, -(2**62)]))


@settings(max_examples=60, deadline=None)
@given(dims=st.lists(st.integers(0, 6), min_size=1, max_size=3), sym=st.booleans(),
       data=st.data())
def test_slice_rules_match_onnxruntime_on_random_bounds(dims, sym, data):
    """Shape rule vs onnxruntime's output shape (axis 0 may be the symbol N), interpreter vs
    onnxruntime, and the VJP as the adjoint: <slice(x), w> == <x, vjp(w)> in onnxruntime."""
    r = len(dims)
    axes = data.draw(st.permutations(list(range(r))))[:data.draw(st.integers(1, r))]
    starts = [data.draw(_bound) for _ in axes]
    ends = [data.draw(_bound) for _ in axes]
    steps = [data.draw(st.sampled_from([-3, -2, -1, 1, 2, 3])) for _ in axes]
    neg = [a - r if data.draw(st.booleans()) else a for a in axes]
    b = gd.GraphBuilder()
    x = b.input("x", (["N"] if sym else []) + dims[int(sym):], "float64")
    y = gd.slice_(x, starts, ends, neg, steps)
    xv = np.random.default_rng(0).standard_normal(dims)
    theirs = gd.run(b.build({"y": y}), {"x": xv}, backend="ort")["y"]
    for axis, (d, got) in enumerate(zip(y.shape, theirs.shape)):
        assert d == got or (sym and axis == 0 and d in (None, N)), (y.shape, theirs.shape)
    w = np.random.default_rng(1).standard_normal(theirs.shape)
    wt = b.input("w", y.shape, "float64")
    g = passes.grad(b.build({"y": y, "loss": gd.reduce_sum(y * wt)}), "loss", ["x"])
    out = run_both(g, {"x": xv, "w": w})
    np.testing.assert_array_equal(out["y"], theirs)
    np.testing.assert_allclose(np.sum(xv * out["x_grad"]), np.sum(theirs * w), atol=1e-12)


# -- errors name the op, the shapes and the user's line ----------------------------------------

ERRORS = [  # (a call that builds on x:[N,3,4] and v:[5], words its message must hold)
    (lambda b, x, v: gd.reshape(v, [2, -1]), ["reshape", "[5]", "divide"]),
    (lambda b, x, v: gd.slice_(x, [0], [2], [1], [0]), ["slice", "step 0", "[N,3,4]"]),
    (lambda b, x, v: gd.slice_(x, [0, 0], [2, 2], [1, -2]), ["slice", "repeated"]),
    (lambda b, x, v: gd.slice_(x, [0, 0], [2]), ["slice", "differ in length"]),
    (lambda b, x, v: gd.slice_(x, [0], [1], axes=[5]), ["slice", "axis 5", "rank 3"]),
    (lambda b, x, v: gd.gather(gd.shape(x), [3]), ["gather", "out of range"]),
    (lambda b, x, v: gd.concat([x, v], 0), ["concat", "[N,3,4]", "[5]"]),
    (lambda b, x, v: gd.squeeze(x, [1]), ["squeeze", "[N,3,4]"]),
    (lambda b, x, v: gd.flatten(x, -4), ["flatten", "out of range"]),
    (lambda b, x, v: gd.expand(x, [2, 5]), ["expand", "[N,3,4]"]),
    (lambda b, x, v: gd.pad(x, [1, 1]), ["pad", "needs 6"]),
    (lambda b, x, v: gd.scatter_add(v, b.const(i64(0, 1)), x, 0), ["scatter_add",
                                                                    "updates [N,3,4]"]),
    (lambda b, x, v: gd.scatter_add_axis(x, [0, 1], v, axis=1),
     ["scatter_add_axis", "[5]", "[N,3,4]", "[N,2,4]"]),
    (lambda b, x, v: gd.constant_of_shape(b.const(i64(2, -3))), ["constant_of_shape",
                                                                  "negative"]),
]


@pytest.mark.parametrize("make, words", ERRORS, ids=[w[0] for _, w in ERRORS])
def test_shape_errors_name_the_op_the_shapes_and_the_users_line(make, words):
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 3, 4], "float64")
    v = b.input("v", [5], "float64")
    with pytest.raises((gd.ShapeError, gd.DTypeError)) as err:
        make(b, x, v)
    msg = str(err.value)
    for w in words:
        assert w in msg, msg
    assert f"test_symbolic_shapes.py:{make.__code__.co_firstlineno}" in msg, msg
