"""conv's NumPy kernels (pointwise, depthwise, im2col in blocks, grouped im2col;
graphdl/ops/conv_kernels.py)
against PyTorch on random geometry: 1-D to 3-D, groups, strides, dilations, asymmetric pads,
bias. Each returns a fresh C-contiguous array of the input's dtype."""
import numpy as np
import pytest

from graphdl.ops.conv import _conv_kernel

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _case(rng: np.random.Generator, r: int, kind: str) -> dict:
    group = int(rng.integers(1, 4))
    c_g, o_g = (1, 1) if kind == "depthwise" else (int(rng.integers(1, 4)),
                                                   int(rng.integers(1, 4)))
    kernel = (1,) * r if kind == "pointwise" else tuple(int(k) for k in rng.integers(1, 4, r))
    pads = (0,) * (2 * r) if kind == "pointwise" else tuple(int(p) for p in
                                                            rng.integers(0, 3, 2 * r))
    sizes = tuple(int(n) for n in rng.integers(4, 8 if r < 3 else 6, r))
    return {"x": rng.standard_normal((int(rng.integers(1, 3)), group * c_g) + sizes),
            "w": rng.standard_normal((group * o_g, c_g) + kernel),
            "b": rng.standard_normal(group * o_g) if rng.random() < 0.5 else None,
            "strides": tuple(int(s) for s in rng.integers(1, 3, r)),
            "dilations": tuple(int(d) for d in rng.integers(1, 3, r)), "pads": pads,
            "group": group}


def _torch_padded(c: dict):
    """c's input zero padded by its ONNX pads, as a torch tensor."""
    r = c["x"].ndim - 2
    widths = []
    for i in reversed(range(r)):  # torch's pad takes the last axis first
        widths += [c["pads"][i], c["pads"][r + i]]
    return F.pad(torch.tensor(c["x"]), widths)


def _torch_conv(c: dict) -> np.ndarray:
    r = c["x"].ndim - 2
    x = _torch_padded(c)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[r]
    b = None if c["b"] is None else torch.tensor(c["b"])
    return conv(x, torch.tensor(c["w"]), b, stride=c["strides"], dilation=c["dilations"],
                groups=c["group"]).numpy()


@pytest.mark.parametrize("kind", ["pointwise", "depthwise", "im2col"])
@pytest.mark.parametrize("r", [1, 2, 3])
def test_conv_kernels_match_torch(kind, r):
    rng = np.random.default_rng(10 * r + len(kind))
    done = 0
    while done < 6:
        c = _case(rng, r, kind)
        span = [d * (k - 1) + 1 for d, k in zip(c["dilations"], c["w"].shape[2:])]
        if any(n + c["pads"][i] + c["pads"][r + i] < s
               for i, (n, s) in enumerate(zip(c["x"].shape[2:], span))):
            continue  # no output
        attrs = {k: c[k] for k in ("strides", "dilations", "pads", "group")}
        want = _torch_conv(c)
        for dt, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
            b = None if c["b"] is None else c["b"].astype(dt)
            got = _conv_kernel(c["x"].astype(dt), c["w"].astype(dt), b, auto_pad="NOTSET",
                               kernel_shape=None, **attrs)
            assert got.dtype == dt and got.flags.c_contiguous
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        done += 1


def _stride1_cases(rng: np.random.Generator, r: int, count: int, sizes=(4, 8), batch=(1, 3),
                   channels=(2, 7)):
    """``count`` random stride-1, one-group convs in ``r`` dims that have an output: kernels
    1-3, dilations 1-2, asymmetric pads 0-2; yields (case, output sizes)."""
    done = 0
    while done < count:
        kernel = tuple(int(k) for k in rng.integers(1, 4, r))
        c = {"x": rng.standard_normal((int(rng.integers(*batch)), int(rng.integers(*channels)))
                                      + tuple(int(n) for n in rng.integers(*sizes, r))),
             "b": None, "strides": (1,) * r, "group": 1,
             "dilations": tuple(int(d) for d in rng.integers(1, 3, r)),
             "pads": tuple(int(p) for p in rng.integers(0, 3, 2 * r))}
        c["w"] = rng.standard_normal((int(rng.integers(1, 4)), c["x"].shape[1]) + kernel)
        outs = [n + c["pads"][i] + c["pads"][r + i] - d * (k - 1)
                for i, (n, d, k) in enumerate(zip(c["x"].shape[2:], c["dilations"], kernel))]
        if min(outs) < 1:
            continue
        yield c, outs
        done += 1


@pytest.mark.parametrize("r", [1, 2, 3])
def test_blocked_im2col_matches_torch_for_every_block_size(r):
    """The one-group path (im2col in blocks of images; at stride 1 on the flat padded grid) on
    random kernels, strides, dilations and asymmetric pads, with blocks of about one image,
    two (a short last block when the batch is odd) and the whole batch."""
    from graphdl.ops.conv_kernels import blocked_im2col

    rng = np.random.default_rng(20 + r)
    done = 0
    while done < 5:
        c = _case(rng, r, "im2col")
        c["x"], c["group"] = c["x"][:, :c["w"].shape[1]], 1
        if done % 2 == 0:  # stride 1, 16 channels: the columns come from the flat grid
            c["strides"] = (1,) * r
            c["x"] = rng.standard_normal((len(c["x"]), 16) + c["x"].shape[2:])
            c["w"] = rng.standard_normal((len(c["w"]), 16) + c["w"].shape[2:])
        c["x"] = np.concatenate([c["x"]] * 3)  # 3 to 6 images: some odd
        kernel, sizes = c["w"].shape[2:], c["x"].shape[2:]
        outs = [(n + c["pads"][i] + c["pads"][r + i] - d * (k - 1) - 1) // s + 1 for i, (n, d, k, s)
                in enumerate(zip(sizes, c["dilations"], kernel, c["strides"]))]
        if min(outs) < 1:
            continue
        c["b"] = None
        want = _torch_conv(c)
        per_image = c["x"].shape[1] * int(np.prod(kernel)) * int(np.prod(outs))
        for dt, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
            for images in (1, 2, len(c["x"])):
                got = blocked_im2col(c["x"].astype(dt), c["w"].astype(dt), c["strides"],
                                     c["dilations"], c["pads"], outs,
                                     block_bytes=images * per_image * np.dtype(dt).itemsize)
                assert got.dtype == dt and got.flags.c_contiguous
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        done += 1


@pytest.mark.parametrize("r", [1, 2, 3])
def test_flat_weight_grad_matches_torch(r):
    """The weight gradient on the flat grid (stride 1, one group: gy on the grid, one product
    per tap with x's shifted view; graphdl/ops/conv_kernels.py) equals torch's autograd of the
    conv, on random kernels, dilations, asymmetric pads and batch sizes, called directly (in
    blocks of 7 rows and of the default size); then a CIFAR-like 3x3 conv through
    conv_weight_grad's kernel, whose dispatch sends it there."""
    from graphdl.ops.conv import _weight_grad_kernel
    from graphdl.ops.conv_kernels import FLAT_BLOCK_ROWS, _FlatGrid, flat_grid, flat_weight_grad

    rng = np.random.default_rng(20 + r)
    for c, outs in _stride1_cases(rng, r, 6, sizes=(3, 8), batch=(1, 4), channels=(1, 5)):
        kernel = c["w"].shape[2:]
        gy = rng.standard_normal((c["x"].shape[0], c["w"].shape[0], *outs))
        w = torch.tensor(c["w"], requires_grad=True)
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[r]
        conv(_torch_padded(c), w, dilation=c["dilations"]).backward(torch.tensor(gy))
        grid = _FlatGrid(c["x"].shape[2:], kernel, c["dilations"], c["pads"], outs)
        for dt, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
            for rows in (7, FLAT_BLOCK_ROWS):  # blocks of 7 rows: many, the last one short
                got = flat_weight_grad(c["x"].astype(dt), gy.astype(dt), grid, rows)
                assert got.dtype == dt and got.shape == c["w"].shape
                np.testing.assert_allclose(got, w.grad.numpy(), rtol=tol, atol=tol)
    x, gy = rng.standard_normal((2, 16, 24, 24)), rng.standard_normal((2, 16, 24, 24))
    assert flat_grid((24, 24), (3, 3), (1, 1), (1, 1, 1, 1), (24, 24)) is not None
    w = torch.zeros((16, 16, 3, 3), dtype=torch.float64, requires_grad=True)
    F.conv2d(torch.tensor(x), w, padding=1).backward(torch.tensor(gy))
    got = _weight_grad_kernel(x, gy, kernel_shape=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1),
                              dilations=(1, 1), group=1)
    np.testing.assert_allclose(got, w.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_pixel_shuffle_conv_transpose_matches_torch(r):
    """ConvTranspose whose kernel is nowhere longer than its stride (kernel offsets on disjoint
    outputs: one product per offset written at its phase) against torch's conv_transpose,
    on random kernels up to the stride, groups, pads, output padding and bias."""
    from graphdl.ops.conv import _conv_transpose_kernel

    rng = np.random.default_rng(40 + r)
    tconv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[r]
    for _ in range(6):
        strides = tuple(int(s) for s in rng.integers(2, 4, r))
        kernel = tuple(int(rng.integers(1, s + 1)) for s in strides)
        group = int(rng.integers(1, 3))
        extra = tuple(int(rng.integers(0, s)) for s in strides)
        pads = tuple(int(p) for p in rng.integers(0, 2, r)) * 2  # torch pads symmetrically
        x = rng.standard_normal((2, 2 * group) + tuple(int(n) for n in rng.integers(2, 6, r)))
        w = rng.standard_normal((2 * group, 3) + kernel)
        b = rng.standard_normal(3 * group)
        want = tconv(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=strides,
                     padding=pads[:r], output_padding=extra, groups=group).numpy()
        for dt, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
            got = _conv_transpose_kernel(x.astype(dt), w.astype(dt), b.astype(dt),
                                         strides=strides, pads=pads, dilations=(1,) * r,
                                         group=group, output_padding=extra)
            assert got.dtype == dt
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
