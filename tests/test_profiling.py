"""graphdl.tools.profiling and ``graphdl profile``: shares that add up, a one-MatMul model whose
MatMul takes nearly all the time at the multiply-adds its shapes imply, gradient kernels
attributed to the forward node they were built for (also through a saved step directory),
random feeds of the right shapes, and one-line CLI errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl import optim
from graphdl.tools.profiling import Profile, default_feeds, profile


def _one_matmul() -> gd.Graph:
    b = gd.GraphBuilder("mm")
    x = b.input("x", ["N", 384])
    w = b.param("w", np.random.default_rng(0).standard_normal((384, 512)).astype(np.float32))
    return b.build({"y": x @ w})


@pytest.mark.parametrize("backend", ["ort", "numpy"])
def test_one_matmul_gets_the_time_at_its_multiply_adds(backend):
    rep = profile(_one_matmul(), {"x": np.ones((256, 384), np.float32)}, backend=backend,
                  runs=5)
    rows = rep.by_op()
    assert abs(sum(r["share"] for r in rows) - 1.0) < 1e-9
    assert abs(rep.total - sum(n.seconds for n in rep.nodes)) < 1e-12
    mm = [n for n in rep.nodes if n.op in ("MatMul", "matmul")]
    assert len(mm) == 1 and mm[0].macs == 256 * 384 * 512  # M * K * N, by hand
    assert mm[0].seconds / rep.total > 0.8
    top = rows[0]
    assert top["op"] == mm[0].op and top["gmacs_per_s"] == pytest.approx(
        mm[0].macs / mm[0].seconds / 1e9)


def _step():
    b = gd.GraphBuilder("clf")
    x, y = b.input("x", ["N", 16]), b.input("y", ["N"], "int64")
    w = b.param("w", np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32))
    logits = x @ w
    fwd = b.build({"loss": gd.softmax_cross_entropy(logits, y)})
    return passes.training_step(fwd, optim.SGD(lr=0.1))


def _fc_node(step) -> str:
    return next(n.name for n in step.graph.nodes if n.op == "matmul" and n.grad_of is None)


def test_gradient_kernels_name_their_forward_node(tmp_path):
    step = _step()
    fc = _fc_node(step)
    grads_of_fc = {n.name for n in step.graph.nodes if n.grad_of == fc}
    assert grads_of_fc  # the backprop pass tagged the dW product with the forward matmul
    step.save(str(tmp_path))
    for source in (step, str(tmp_path)):  # in memory, and read back from the files
        rep = profile(source, backend="ort", runs=2, batch=8)
        attributed = {n.node for n in rep.nodes if n.grad_of == fc}
        assert attributed and attributed <= grads_of_fc
        forward = [n for n in rep.nodes if n.node == fc]
        assert forward and all(n.grad_of is None for n in forward)
    numpy_rep = profile(step, backend="numpy", runs=2, batch=8)
    attributed = {n.node for n in numpy_rep.nodes if n.grad_of == fc}
    assert attributed and attributed <= grads_of_fc


def test_default_feeds_have_the_inputs_shapes():
    feeds = default_feeds([("x", "float32", ["N", 3]), ("y", "int64", ["N"]),
                           ("m", "bool", [2])], {"z": np.ones(1)}, batch=5)
    assert feeds["x"].shape == (5, 3) and feeds["x"].dtype == np.float32
    assert feeds["x"].std() > 0  # random, not constant
    assert feeds["y"].shape == (5,) and not feeds["y"].any()  # zeros: valid class indices
    assert feeds["m"].dtype == np.bool_ and feeds["z"].tolist() == [1.0]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphdl", "profile", *args],
                          capture_output=True, text=True)


def test_cli_profiles_a_step_directory(tmp_path):
    step = _step()
    step.save(str(tmp_path))
    res = _cli(str(tmp_path), "--runs", "2", "--top", "100")  # every node: order is timing
    assert res.returncode == 0, res.stderr
    assert f"(gradient of {_fc_node(step)})" in res.stdout
    assert "GMAC/s" in res.stdout and "share" in res.stdout
    np.save(tmp_path / "x.npy", np.ones((4, 7), np.float32))  # 7 features, the step has 16
    for args, says in (((str(tmp_path / "nowhere"),), "nowhere"),
                       ((str(tmp_path), "--feed", f"x={tmp_path / 'x.npy'}"), "onnxruntime"),
                       ((str(tmp_path), "--backend", "tvm"), "--backend")):
        res = _cli(*args)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], res.stderr


def test_report_rows_sum_and_order():
    from graphdl.tools.profiling import NodeTime

    rep = Profile("ort", 1, [NodeTime("a", "MatMul", 0.003, 3 * 10**9),
                             NodeTime("b", "Add", 0.001),
                             NodeTime("c", "MatMul", 0.004, 4 * 10**9)])
    rows = rep.by_op()
    assert [r["op"] for r in rows] == ["MatMul", "Add"]
    assert rows[0]["share"] == pytest.approx(0.875) and rows[0]["nodes"] == 2
    assert rows[0]["gmacs_per_s"] == pytest.approx(1000.0)  # 7e9 MACs in 7 ms
    assert [n.name for n in rep.top(2)] == ["c", "a"]
