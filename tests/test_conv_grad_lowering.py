"""Conv's weight gradient lowered to MatMuls (graphdl/ops/conv_grad_lowering.py), both plans,
and the interpreter's stride-1 conv_transpose kernel (the forward conv on the flipped weight):
each against PyTorch's own conv gradients (torch.nn.grad) over strides, asymmetric pads,
dilations and 1-, 2- and 3-D kernels, in onnxruntime (float32 and float64) and the interpreter;
the exported files are standard ONNX that the full checker accepts."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import graphdl as gd
from graphdl.ops.conv import conv_transpose, conv_weight_grad
from graphdl.ops.conv_grad_lowering import plan

torch = pytest.importorskip("torch")

# (C, O, spatial, kernel, strides, pads [begins..., ends...], dilations)
GEOMETRIES = [
    (2, 3, (7, 6), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),      # batched plan (C*K = 18)
    (5, 4, (7, 6), (3, 3), (2, 1), (1, 0, 2, 1), (1, 2)),      # taps, strided, dilated, asym.
    (6, 3, (8, 8), (1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),      # 1x1 strided: batched
    (8, 2, (5, 5), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),      # 1x1: the columns are x itself
    (4, 5, (9, 9), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),      # taps, the ResNet's downsampling
    (3, 2, (9,), (4,), (2,), (2, 1), (1,)),                    # 1-D
    (2, 2, (4, 5, 4), (2, 3, 2), (1, 2, 1), (1, 0, 1, 0, 1, 1), (1, 1, 2)),  # 3-D
]


def _out(sizes, kernel, strides, pads, dil):
    r = len(sizes)
    return tuple((n + pads[i] + pads[r + i] - dil[i] * (k - 1) - 1) // strides[i] + 1
                 for i, (n, k) in enumerate(zip(sizes, kernel)))


def _torch_grads(x, w, gy, strides, pads, dil):
    """(dx, dw) of <conv(x, w), gy> by autograd (pads applied explicitly: torch's conv takes
    symmetric padding only)."""
    r = len(strides)
    pad_arg = []
    for i in reversed(range(r)):
        pad_arg += [pads[i], pads[r + i]]
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
            3: torch.nn.functional.conv3d}[r]
    y = conv(torch.nn.functional.pad(xt, pad_arg), wt, stride=strides, dilation=dil)
    (y * torch.tensor(gy)).sum().backward()
    return xt.grad.numpy(), wt.grad.numpy()


def _case(geo, dtype, seed=0):
    c, o, sizes, kernel, strides, pads, dil = geo
    rng = np.random.default_rng(seed)
    outs = _out(sizes, kernel, strides, pads, dil)
    x = rng.standard_normal((2, c, *sizes)).astype(dtype)
    w = rng.standard_normal((o, c, *kernel)).astype(dtype)
    gy = rng.standard_normal((2, o, *outs)).astype(dtype)
    return x, w, gy


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("geo", GEOMETRIES, ids=lambda g: f"C{g[0]}k{g[3]}s{g[4]}")
def test_weight_grad_matmul_lowering_matches_torch(geo, dtype):
    c, o, sizes, kernel, strides, pads, dil = geo
    x, w, gy = _case(geo, dtype)
    _, want = _torch_grads(x, w, gy, strides, pads, dil)
    b = gd.GraphBuilder("wgrad")
    xi = b.input("x", ["N", c, *sizes], dtype)
    gi = b.input("gy", ["N", o, *gy.shape[2:]], dtype)
    g = b.build({"dw": conv_weight_grad(xi, gi, kernel, strides, pads, dil)})
    model = gd.to_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert "MatMul" in ops and "Conv" not in ops  # the MatMul plan, not the Conv lowering
    assert all(d.domain in ("", "ai.onnx") for d in model.opset_import)
    tol = 1e-4 if dtype == "float32" else 1e-12
    for backend in ("ort", "numpy"):
        got = gd.run(g, {"x": x, "gy": gy}, backend=backend)["dw"]
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_plan_picks_batched_for_small_columns_and_taps_otherwise():
    assert [plan(c, k) for c, k in ((3, (3, 3)), (16, (1, 1)), (64, (1, 1)), (16, (3, 3)),
                                     (4, (3, 3)))] == ["batched", "batched", "taps", "taps",
                                                       "taps"]


@pytest.mark.parametrize("group", [1, 2])
@pytest.mark.parametrize("geo", [g for g in GEOMETRIES if set(g[4]) == {1}],
                         ids=lambda g: f"C{g[0]}k{g[3]}")
def test_stride1_conv_transpose_kernel_is_conv_input_gradient(geo, group):
    """The interpreter's stride-1 conv_transpose (forward conv on the flipped weight) gives
    torch's input gradient, grouped too; the exported ConvTranspose agrees (float32)."""
    c, o, sizes, kernel, strides, pads, dil = geo
    c, o = c * group, o * group
    rng = np.random.default_rng(3)
    outs = _out(sizes, kernel, strides, pads, dil)
    x = rng.standard_normal((2, c, *sizes))
    w = rng.standard_normal((o, c // group, *kernel))
    gy = rng.standard_normal((2, o, *outs))
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w)
    r = len(sizes)
    pad_arg = [p for i in reversed(range(r)) for p in (pads[i], pads[r + i])]
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
            3: torch.nn.functional.conv3d}[r]
    y = conv(torch.nn.functional.pad(xt, pad_arg), wt, dilation=dil, groups=group)
    (y * torch.tensor(gy)).sum().backward()
    b = gd.GraphBuilder("ct")
    gi = b.input("gy", list(gy.shape), "float64")
    wi = b.input("w", list(w.shape), "float64")
    g = b.build({"dx": conv_transpose(gi, wi, None, strides, pads, dil, group)})
    got = gd.run(g, {"gy": gy, "w": w})["dx"]
    np.testing.assert_allclose(got, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    b32 = gd.GraphBuilder("ct32")
    gi, wi = b32.input("gy", list(gy.shape)), b32.input("w", list(w.shape))
    g32 = b32.build({"dx": conv_transpose(gi, wi, None, strides, pads, dil, group)})
    got = gd.run(g32, {"gy": gy.astype(np.float32), "w": w.astype(np.float32)},
                 backend="ort")["dx"]
    np.testing.assert_allclose(got, xt.grad.numpy(), rtol=1e-4, atol=1e-4)
