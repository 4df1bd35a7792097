"""Gather's gradient (graphdl/ops/gather.py): a Pad of g when the indices are a constant scalar
or a constant run of consecutive indices (how PyTorch's exports split fused q/k/v projections),
a scatter-add otherwise; both against the hand-derived adjoint (np.add.at of g at the gathered
positions), in the interpreter and in onnxruntime, and the exported gradient graph holding a
Pad and no ScatterElements exactly when the indices form such a run."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl.onnx.export import to_onnx

RNG = np.random.default_rng(7)


def _graph(shape, indices, axis):
    b = gd.GraphBuilder("g")
    x = b.input("x", list(shape), "float64")
    r = b.input("r", list(np.take(np.zeros(shape), np.asarray(indices), axis).shape), "float64")
    picked = gd.gather(x, b.const(np.asarray(indices, np.int64)), axis)
    return b.build({"loss": gd.reduce_sum(picked * r)})


def _want(x, indices, axis, r):
    """d/dx sum(take(x, idx, axis) * r): r added back where take read it."""
    out = np.zeros_like(x)
    moved = np.moveaxis(out, axis, 0)  # a view: the gathered axis first
    if np.ndim(indices) == 0:
        moved[indices] += r  # r has x's shape without the axis
    else:
        np.add.at(moved, np.asarray(indices), np.moveaxis(r, axis, 0))
    return out


@pytest.mark.parametrize("shape,indices,axis,dense", [
    ((4, 3, 5), 2, 0, True), ((4, 3, 5), -1, 2, True), ((4, 3, 5), 1, -2, True),
    ((2, 6, 3), [1, 2, 3], 1, True),
    ((2, 6, 3), [-2, -1], 1, True), ((4, 5), [0, 2], 1, False), ((4, 5), [1, 1], 0, False),
    ((4, 5), [3, 2], 0, False)])
def test_gather_gradient(shape, indices, axis, dense):
    g = _graph(shape, indices, axis)
    x = RNG.standard_normal(shape)
    r = RNG.standard_normal(np.take(x, np.asarray(indices), axis).shape)
    gg = passes.grad(g, "loss", ["x"])
    want = _want(x, indices, axis, r)
    np.testing.assert_allclose(gd.run(gg, {"x": x, "r": r})["x_grad"], want, rtol=0, atol=1e-15)
    got = gd.run(gg, {"x": x, "r": r}, backend="ort")["x_grad"]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    ops = {n.op_type for n in to_onnx(gg).graph.node}
    assert ("Pad" in ops and "ScatterElements" not in ops) == dense, ops
