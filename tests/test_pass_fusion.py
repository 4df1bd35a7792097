"""Fusion: MatMul + Add -> Gemm with transposes folded in, elementwise chains -> one fused
node (convex regions only), the fused node's VJP (the backprop of its body) and ONNX export,
and the MLP training step: >= 30% fewer nodes, same numbers in both engines."""
import re

import numpy as np
import pytest

import graphdl as gd
import passes
from benchmarks.mlp_step import batch, init_params, mlp_train_step, numpy_mlp_step
from graphdl.engine.interpreter import Plan
from passes import (ActivationFusion, DeadCodeElimination, ElementwiseFusion, GemmFusion,
                    PassManager)
from passes.fusion import find_groups, is_convex


def _dense_grad() -> gd.Graph:
    b = gd.GraphBuilder("dense")
    x, w, c = b.input("x", ["N", 3]), b.input("w", [3, 2]), b.input("c", [2])
    g = b.build({"loss": gd.reduce_sum(gd.tanh(x @ w + c))})
    return passes.grad(g, "loss", ["w", "x"])


def _feeds(shapes: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def test_matmul_add_and_transposes_become_gemm():
    gg = _dense_grad()
    out = PassManager([GemmFusion(), DeadCodeElimination()]).run(gg).graph
    lines = [line.split("  #")[0] for line in str(out).splitlines()]
    assert lines[5:6] + lines[-5:-2] == [
        "  %add_2:f32[N,2] = gemm(%x, %w, %c, activation=None, alpha=1.0, beta=1.0, "
        "transA=0, transB=0)",
        "  %mul_8:f32[N,2] = mul(%expand_4, %sub_7)",
        "  %x_grad:f32[N,3] = gemm(%mul_8, %w, activation=None, alpha=1.0, beta=1.0, "
        "transA=0, transB=1)",
        "  %w_grad:f32[3,2] = gemm(%x, %mul_8, activation=None, alpha=1.0, beta=1.0, "
        "transA=1, transB=0)"]
    assert not {"matmul", "transpose", "add"} & {n.op for n in out.nodes}
    feeds = _feeds({"x": (5, 3), "w": (3, 2), "c": (2,)})
    want = gd.run(gg, feeds, backend="ort")
    for engine in ("numpy", "ort"):
        got = gd.run(out, feeds, backend=engine)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)


def _chain() -> gd.Graph:
    b = gd.GraphBuilder("chain")
    x, y = b.input("x", ["N", 4]), b.input("y", [4])
    h = gd.relu(x * 2.0 + y)
    e = gd.exp(x)
    return b.build({"o": gd.sigmoid(h) * h - 1.0, "m": e @ gd.transpose(e)})


def test_elementwise_chain_becomes_one_fused_node():
    g = _chain()
    out = PassManager([ElementwiseFusion(), DeadCodeElimination()]).run(g).graph
    assert [n.op for n in out.nodes] == ["exp", "fused_elementwise", "transpose", "matmul"]
    body = out.nodes[1].attrs["body"]
    assert [ins[0] for ins in body] == ["constant", "constant", "mul", "add", "relu", "sigmoid",
                                        "mul", "sub"]
    feeds = _feeds({"x": (6, 4), "y": (4,)})
    want = gd.run(g, feeds, backend="ort")
    for engine in ("numpy", "ort"):  # ort runs the body inlined as standard ops
        got = gd.run(out, feeds, backend=engine)
        np.testing.assert_allclose(got["o"], want["o"], rtol=1e-6, atol=1e-6, err_msg=engine)


def test_fused_vjp_is_the_backprop_of_its_body():
    g = _chain()
    b = gd.GraphBuilder.from_graph(g)
    lg = b.build({"loss": gd.reduce_sum(b.tensor(g.value("o")) * b.tensor(g.value("o")))})
    fused = PassManager([ElementwiseFusion()]).run(lg).graph
    assert "fused_elementwise" in {n.op for n in fused.nodes}
    feeds = _feeds({"x": (6, 4), "y": (4,)}, seed=1)
    want = gd.run(passes.grad(lg, "loss", ["x", "y"]), feeds, backend="ort")
    got = gd.run(passes.grad(fused, "loss", ["x", "y"]), feeds)
    for k in ("x_grad", "y_grad"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5, err_msg=k)


def test_groups_are_convex_and_a_non_convex_region_is_detected():
    g = mlp_train_step()
    # scalar constants are copied into each body as literals, not moved: leave them out
    groups = [{n for n in m if n.op != "constant"} for m in find_groups(g).values()]
    groups = [m for m in groups if len(m) > 1]
    assert len(groups) >= 9 and all(is_convex(g, m) for m in groups)
    b = gd.GraphBuilder("nc")
    x = b.input("x", [3])
    a = gd.exp(x)
    mid = gd.reduce_sum(a, keepdims=True)  # outside any elementwise group
    g2 = b.build({"o": a * mid})
    prod = g2.producers
    region = [prod[a.value], prod[g2.outputs[0]]]
    assert not is_convex(g2, region)  # a -> reduce_sum -> mul leaves and re-enters
    assert all(is_convex(g2, m) for m in find_groups(g2).values())


def test_mlp_training_step_shrinks_by_30_percent_and_keeps_its_numbers():
    g = mlp_train_step()
    trace: list = []
    out = passes.optimize(g, trace)
    assert len(out.nodes) <= 0.7 * len(g.nodes), (len(g.nodes), len(out.nodes))
    params = init_params()
    feeds = {**batch(), **params}
    want = numpy_mlp_step(feeds["x"], feeds["y"], params)  # independent hand-written step
    for engine in ("numpy", "ort"):
        got = gd.run(out, feeds, backend=engine)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_in_place_plan_leaves_feeds_and_parameters_untouched():
    out = passes.optimize(mlp_train_step())
    plan = Plan(out)
    assert plan.n_inplace >= 6
    params = init_params()
    feeds = {**batch(), **params}
    copies = {k: v.copy() for k, v in feeds.items()}
    first = plan(feeds)
    second = plan(feeds)
    for k in copies:
        np.testing.assert_array_equal(feeds[k], copies[k], err_msg=k)
    for k in first:
        np.testing.assert_array_equal(first[k], second[k], err_msg=k)


@pytest.mark.parametrize("dying", [(), (0,), (1,), (0, 1)])
def test_fused_body_in_place_and_reference_kernel_agree(dying):
    """A fused body compiled in place (writing into the inputs whose buffers die at it) and
    the op's reference kernel (a new array per instruction) give the same values."""
    from graphdl.engine.interpreter import Plan
    from graphdl.ops.fused import fused_elementwise

    b = gd.GraphBuilder("f")
    x, y = b.input("x", [3, 4]), b.input("y", [3, 4])
    a, c = gd.exp(x), gd.exp(y)  # fresh buffers; they die at the fused node unless output
    body = (("add", (0, 1), ()), ("relu", (2,), ()), ("mul", (3, 0), ()))
    outs = {"z": fused_elementwise([a, c], body)}
    outs.update({f"keep{k}": [a, c][k] for k in (0, 1) if k not in dying})
    g = b.build(outs)
    feeds = _feeds({"x": (3, 4), "y": (3, 4)}, seed=2)
    ea, ec = np.exp(feeds["x"]), np.exp(feeds["y"])
    want = np.maximum(ea + ec, 0) * ea
    plan = Plan(g)
    np.testing.assert_allclose(plan(feeds)["z"], want, rtol=1e-6)
    # relu and mul write into the add's result; the add into c's buffer when c dies there (a
    # is read again by the mul, so its buffer cannot take the sum)
    assert plan.n_inplace == 2 + (1 in dying)
    ref = gd.get_op("fused_elementwise").kernel(ea, ec, body=body)
    np.testing.assert_allclose(ref, want, rtol=1e-6)


def test_conv_plus_channel_bias_becomes_conv_with_bias():
    from graphdl.ops.conv import conv

    b = gd.GraphBuilder("cb")
    x, w, c = b.input("x", ["N", 2, 5, 5]), b.input("w", [3, 2, 3, 3]), b.input("c", [3])
    g = b.build({"y": gd.relu(conv(x, w, pads=1) + gd.reshape(c, [3, 1, 1]))})
    out = PassManager([GemmFusion(), DeadCodeElimination()]).run(g).graph
    assert [n.op for n in out.nodes] == ["conv", "relu"]
    assert [v.name for v in out.nodes[0].inputs] == ["x", "w", "c"]
    feeds = _feeds({"x": (2, 2, 5, 5), "w": (3, 2, 3, 3), "c": (3,)})
    want = gd.run(g, feeds, backend="ort")["y"]
    for engine in ("numpy", "ort"):
        np.testing.assert_allclose(gd.run(out, feeds, backend=engine)["y"], want, rtol=1e-5,
                                   atol=1e-5, err_msg=engine)


def test_relu_joins_its_gemm_and_the_mask_reads_their_output():
    """The ReLU VJP reads the ReLU's output, so the pre-activation has one reader and the
    ReLU becomes the Gemm's in-place epilogue; the backprop mask reads the fused output."""
    b = gd.GraphBuilder("mask")
    x, w = b.input("x", ["N", 4]), b.input("w", [4, 4])
    g = b.build({"loss": gd.reduce_sum(gd.relu(x @ w) * 2.0)})
    gg = passes.grad(g, "loss", ["w"])
    out = passes.optimize(gg)
    assert "relu" not in {n.op for n in out.nodes}
    (fwd,) = [n for n in out.nodes if n.op == "gemm" and n.attrs["activation"] == "relu"]
    greater = [n for n in out.nodes if n.op == "fused_elementwise"
               and any(ins[0] == "greater" for ins in n.attrs["body"])]
    assert greater and fwd.outputs[0] in greater[0].inputs
    plan = Plan(out)
    assert re.search(r"^    _relu\w*\(v\d+\)$", plan.source, re.M)  # in place, its own line
    feeds = _feeds({"x": (5, 4), "w": (4, 4)})
    want = gd.run(gg, feeds, backend="ort")
    got = plan(feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
def test_activation_joins_the_gemm_it_follows(act):
    """x @ w + c then the activation -> one gemm node with that epilogue, same numbers in both
    engines as the unfused graph; a second reader of the pre-activation blocks the fusion."""
    def build(keep_pre: bool) -> gd.Graph:
        b = gd.GraphBuilder("act")
        x, w, c = b.input("x", ["N", 3]), b.input("w", [3, 4]), b.input("c", [4])
        pre = x @ w + c
        return b.build({"y": getattr(gd, act)(pre), **({"pre": pre} if keep_pre else {})})

    g, kept = build(False), build(True)
    out = PassManager([GemmFusion(), ActivationFusion(), DeadCodeElimination()]).run(g).graph
    assert [(n.op, n.attrs.get("activation")) for n in out.nodes] == [("gemm", act)]
    same = PassManager([GemmFusion(), ActivationFusion()]).run(kept).graph
    assert act in {n.op for n in same.nodes}
    feeds = _feeds({"x": (5, 3), "w": (3, 4), "c": (4,)})
    want = gd.run(g, feeds)["y"]
    for engine in ("numpy", "ort"):
        np.testing.assert_allclose(gd.run(out, feeds, backend=engine)["y"], want, rtol=1e-6,
                                   atol=1e-7, err_msg=engine)


def test_relu_joins_the_conv_it_follows_and_batch_norm_does_not_fold_past_it():
    """conv + bias + relu -> one conv node; a frozen per-channel scale after that node stays
    a multiply (folding it into the weights would move it before the ReLU)."""
    from graphdl.ops.conv import conv

    rng = np.random.default_rng(0)
    b = gd.GraphBuilder("convrelu")
    x = b.input("x", ["N", 2, 5, 5])
    w = b.param("w", rng.standard_normal((3, 2, 3, 3)).astype(np.float32))
    c = b.param("c", rng.standard_normal((3, 1, 1)).astype(np.float32))
    s = b.param("s", rng.standard_normal((3, 1, 1)).astype(np.float32))
    g = b.build({"y": gd.relu(conv(x, w, pads=1) + c) * s})
    out = passes.optimize(g)
    assert [(n.op, n.attrs.get("activation")) for n in out.nodes] == [
        ("conv", "relu"), ("mul", None)]
    feeds = {"x": rng.standard_normal((2, 2, 5, 5)).astype(np.float32)}
    want = gd.run(g, feeds)["y"]
    for engine in ("numpy", "ort"):
        np.testing.assert_allclose(gd.run(out, feeds, backend=engine)["y"], want, rtol=1e-5,
                                   atol=1e-6, err_msg=engine)


def test_fused_nodes_export_inline_or_as_model_local_functions():
    import onnx

    from graphdl.onnx.export import to_onnx

    g = _chain()
    out = PassManager([ElementwiseFusion(), DeadCodeElimination()]).run(g).graph
    inline, funcs = to_onnx(out), to_onnx(out, functions=True)
    for m in (inline, funcs):
        onnx.checker.check_model(m, full_check=True)
    assert not inline.functions and {n.domain for n in inline.graph.node} == {""}
    assert len(funcs.functions) == 1 and len(funcs.graph.node) < len(inline.graph.node)
    assert [f.node[-1].op_type for f in funcs.functions] == ["Sub"]
    feeds = _feeds({"x": (6, 4), "y": (4,)}, seed=3)
    want = gd.run(g, feeds)
    import onnxruntime as ort

    for m in (inline, funcs):
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        np.testing.assert_allclose(got["o"], want["o"], rtol=1e-6, atol=1e-6)


def test_softmax_cross_entropy_and_its_gradient_become_one_node():
    torch = pytest.importorskip("torch")
    from passes import LossGradFusion

    b = gd.GraphBuilder("sce")
    z, y = b.input("z", ["N", 5]), b.input("y", ["N"], "int64")
    gg = passes.grad(b.build({"loss": gd.softmax_cross_entropy(z * 2.0, y)}), "loss", ["z"])
    out = PassManager([LossGradFusion(), DeadCodeElimination()]).run(gg).graph
    ops = [n.op for n in out.nodes]
    assert "softmax_cross_entropy_and_grad" in ops and "softmax" not in ops
    assert "softmax_cross_entropy" not in ops and "equal" not in ops
    zv = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float32)
    yv = np.array([0, 4, 2, 2, 1, 3])
    zt = torch.tensor(zv, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(zt * 2.0, torch.tensor(yv))
    loss.backward()
    for engine in ("numpy", "ort"):
        got = gd.run(out, {"z": zv, "y": yv}, backend=engine)
        np.testing.assert_allclose(got["loss"], loss.item(), rtol=1e-5, err_msg=engine)
        np.testing.assert_allclose(got["z_grad"], zt.grad.numpy(), rtol=1e-5, atol=1e-6)
