"""Convolution in NCW / NCHW / NC... layout, as ONNX ``Conv``
defines it: groups, dilations, strides, explicit pads or ``auto_pad``, optional bias.

Three ops, each the adjoint of the others, so the gradient graph is ordinary ops that export to
ONNX and can be differentiated again:

- ``conv(x, w, b)``: y = x (*) w: a matrix product for 1x1 kernels, per-tap multiply-adds
  for depthwise convs, else im2col and one matrix product (:mod:`graphdl.ops.conv_kernels`).
- ``conv_transpose(x, w, b)``: ONNX ``ConvTranspose``, the adjoint of ``conv`` in its input;
  it is conv's input gradient.
- ``conv_weight_grad(x, gy)``: d<conv(x, w), gy>/dw, conv's weight gradient; ONNX has no such
  op, so it lowers to MatMuls (:mod:`graphdl.ops.conv_grad_lowering`) or, for grouped convs,
  a ``Conv`` of the transposed input with the transposed output gradient.

onnxruntime has none of ``Conv`` / ``ConvTranspose`` in float64: there the three lower to
im2col with Slice and MatMul (:mod:`graphdl.ops.im2col_lowering`).

Every spatial axis obeys ``O = floor((N + pads - dilation * (F - 1) - 1) / s) + 1``: the textbook
``O = (N - F + 2Q) / s + 1`` for dilation 1 and pads Q on both sides. That rule, ``auto_pad``
and im2col live in :mod:`graphdl.ops.window`, shared with pooling.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import REQUIRED, Call, OpDef, register
from ..core.types import Dim, TensorType, dims_equal, shape_str
from . import epilogue
from .common import WIDEN_NONE, need_float, same_dtype
from .conv_grad_lowering import lower_weight_grad
from .conv_kernels import (FLAT_MIN_CHANNELS, conv_forward, conv_transpose_forward, flat_grid,
                           flat_weight_grad)
from .im2col_lowering import (Window, conv_matmul, flipped_weight_matrix, needs_fallback,
                              static_spatial, weight_grad_matmul, weight_matrix, window,
                              zero_insert)
from .reduce import reduce_sum
from .window import (as_pads, as_tuple, fit_transpose, im2col, out_dims,
                     resolve_pads, spatial, static_sizes)


def _check_rank(op: str, t: TensorType, what: str) -> int:
    if t.shape is None or len(t.shape) < 3:
        raise ShapeError(f"{op}: {what} must be [N, C, spatial...] (rank >= 3), got "
                         f"{shape_str(t.shape)}")
    return len(t.shape) - 2


def _channels_fit(op: str, c_in: Dim, c_w: Dim, group: int, x: TensorType, w: TensorType
                  ) -> None:
    if isinstance(c_in, int) and isinstance(c_w, int) and c_in != c_w * group:
        raise ShapeError(f"{op}: input {shape_str(x.shape)} has {c_in} channels, but weight "
                         f"{shape_str(w.shape)} with group={group} takes {c_w * group}")


# -- conv --------------------------------------------------------------------------------------


def _conv_infer(types: list, attrs: dict) -> list[TensorType]:
    x, w, bias = types[0], types[1], types[2] if len(types) > 2 else None
    dt = same_dtype([t for t in types if t is not None])
    need_float(x, "conv input")
    epilogue.check(attrs["activation"], "conv")
    r = _check_rank("conv", x, "input")
    if w.shape is None or len(w.shape) != r + 2 or not all(isinstance(k, int) for k in
                                                             w.shape[2:]):
        raise ShapeError(f"conv: weight must be [out_channels, in_channels/group, kernel...] "
                         f"with a static kernel of rank {r}, got {shape_str(w.shape)}")
    group, kernel = attrs["group"], tuple(w.shape[2:])
    if attrs["kernel_shape"] is not None and tuple(attrs["kernel_shape"]) != kernel:
        raise ShapeError(f"conv: kernel_shape {list(attrs['kernel_shape'])} does not match "
                         f"weight {shape_str(w.shape)}")
    _channels_fit("conv", x.shape[1], w.shape[1], group, x, w)
    if isinstance(w.shape[0], int) and w.shape[0] % group:
        raise ShapeError(f"conv: {w.shape[0]} output channels do not split into {group} groups")
    if bias is not None and (bias.shape is None or len(bias.shape) != 1
                             or dims_equal(bias.shape[0], w.shape[0]) is False):
        raise ShapeError(f"conv: bias must be [{w.shape[0]}], got {shape_str(bias.shape)}")
    outs = out_dims("conv", x.shape[2:], kernel, attrs)
    return [TensorType(dt, (x.shape[0], w.shape[0]) + outs)]


def _groups(a: np.ndarray, group: int) -> list[np.ndarray]:
    """The ``group`` equal slices of ``a`` along axis 0 (views)."""
    n = a.shape[0] // group
    return [a[g * n:(g + 1) * n] for g in range(group)]


def _columns(x: np.ndarray, kernel: Sequence[int], attrs: dict, outs: Sequence[int]
             ) -> np.ndarray:
    r = len(kernel)
    strides, dil, _ = spatial(attrs, r)
    return im2col(x, kernel, strides, dil, resolve_pads("conv", x.shape[2:], kernel, attrs),
                  outs)


def _conv_kernel(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                 **attrs: Any) -> np.ndarray:
    """Pointwise, depthwise or im2col by the conv's shape (:mod:`.conv_kernels`), then the
    fused activation in place on that fresh result."""
    kernel = w.shape[2:]
    strides, dil, _ = spatial(attrs, len(kernel))
    pads = resolve_pads("conv", x.shape[2:], kernel, attrs)
    outs = out_dims("conv", x.shape[2:], kernel, attrs)
    y = conv_forward(x, w, b, strides, dil, pads, attrs["group"], outs)
    return epilogue.apply(y, attrs.get("activation"))


def _bias(node: Any) -> Any:
    return node.inputs[2] if len(node.inputs) > 2 else None


def _conv_lower(ctx: Any, node: Any) -> None:
    """ONNX Conv, except in float64 (no onnxruntime kernel): im2col with Slice and MatMul;
    then the fused activation's op, if any."""
    epilogue.lower(ctx, node, lambda outs: _conv_emit(ctx, node, outs[0]))


def _conv_emit(ctx: Any, node: Any, out: Any) -> None:
    a = node.attrs
    r = node.inputs[0].type.rank - 2
    strides, dil, pads = spatial(a, r)
    if needs_fallback(node.inputs[0]):
        x, w = node.inputs[:2]
        sizes = static_spatial("conv", x)
        kernel = tuple(w.type.shape[2:])
        pads = resolve_pads("conv", sizes, kernel, a)
        win = window(kernel, strides, dil, pads, node.outputs[0].type.shape[2:])
        conv_matmul(ctx, x.name, sizes, weight_matrix(ctx, w, a["group"]), win, a["group"],
                    w.type.shape[0], out, _bias(node))
        return
    auto = a["auto_pad"]
    ctx.emit("Conv", node.inputs, [out], strides=strides, dilations=dil, group=a["group"],
             pads=pads if auto == "NOTSET" else None, auto_pad=None if auto == "NOTSET" else auto,
             kernel_shape=node.inputs[1].type.shape[2:])


def explicit(x: Tensor, kernel: Sequence[int], attrs: dict, op: str) -> dict:
    """attrs with auto_pad resolved to explicit pads (for the gradient ops)."""
    sizes = static_sizes(x, op)
    strides, dil, _ = spatial(attrs, len(kernel))
    return {"strides": strides, "dilations": dil,
            "pads": resolve_pads(op, sizes, kernel, attrs), "group": attrs["group"]}


def conv_adjoints(x: Tensor, w: Tensor, g: Tensor, geo: dict) -> tuple[Tensor, Tensor]:
    """(d x, d w) of <conv(x, w), g> with explicit geometry ``geo``."""
    kernel = tuple(w.shape[2:])
    sizes = static_sizes(x, "conv")
    outs = tuple(g.shape[2:])
    pads, extra = fit_transpose(sizes, outs, kernel, geo["strides"], geo["dilations"],
                                geo["pads"])
    gx = conv_transpose(g, w, None, geo["strides"], pads, geo["dilations"], geo["group"], extra)
    gw = conv_weight_grad(x, g, kernel, **geo)
    return gx, gw


def _conv_vjp(b, c: Call, gys):
    """dx, dw by the conv's adjoints, db the channel sums, all of the gradient before the
    fused activation (if any)."""
    x, w = c.inputs[:2]
    g = epilogue.pre_activation_grad(gys[0], c.outputs[0], c.attrs["activation"])
    geo = explicit(x, w.shape[2:], c.attrs, "conv")
    gx, gw = conv_adjoints(x, w, g, geo)
    out = [gx, gw]
    if len(c.inputs) > 2 and c.inputs[2] is not None:
        out.append(reduce_sum(g, (0,) + tuple(range(2, 2 + x.type.rank - 2))))
    return out + [None] * (len(c.inputs) - len(out))


register(OpDef("conv", _conv_infer, (2, 3), kernel=_conv_kernel, lower=_conv_lower,
               slots={1: "weight", 2: "bias"},
               fresh=True, widen=WIDEN_NONE,  # conv_kernels.py: never views
               vjp=_conv_vjp, attrs={"strides": None, "pads": None, "dilations": None,
                                     "group": 1, "auto_pad": "NOTSET", "kernel_shape": None,
                                     "activation": None},
               doc="ONNX Conv: x [N, C, S...], w [O, C/group, K...], bias [O]; then an "
                   "optional fused activation (ops/epilogue.py)."))


def conv(x: Tensor, w: Tensor, b: Tensor | None = None, strides: int | Sequence[int] = 1,
         pads: int | Sequence[int] = 0, dilations: int | Sequence[int] = 1, group: int = 1,
         auto_pad: str = "NOTSET") -> Tensor:
    """ONNX Conv. ``pads`` is one int (all sides), one per spatial axis (both sides), or
    ONNX's [begins..., ends...]; ``auto_pad`` ("SAME_UPPER", "SAME_LOWER", "VALID") replaces it."""
    r = max((w.type.rank or 3) - 2, 1)
    p = as_pads(pads, r)
    return x.b.apply1("conv", [x, w] if b is None else [x, w, b],
                      strides=as_tuple(strides, r, "strides"), pads=p,
                      dilations=as_tuple(dilations, r, "dilations"), group=int(group),
                      auto_pad=auto_pad)


# -- conv_transpose ----------------------------------------------------------------------------


def _conv_transpose_infer(types: list, attrs: dict) -> list[TensorType]:
    x, w, bias = types[0], types[1], types[2] if len(types) > 2 else None
    dt = same_dtype([t for t in types if t is not None])
    r = _check_rank("conv_transpose", x, "input")
    if w.shape is None or len(w.shape) != r + 2 or not all(isinstance(k, int) for k in
                                                             w.shape[2:]):
        raise ShapeError(f"conv_transpose: weight must be [in_channels, out_channels/group, "
                         f"kernel...] with a static kernel, got {shape_str(w.shape)}")
    group = attrs["group"]
    _channels_fit("conv_transpose", x.shape[1], w.shape[0], 1, x, w)
    strides, dil, pads = spatial(attrs, r)
    extra = tuple(attrs["output_padding"] or (0,) * r)
    if len(extra) != r or any(not 0 <= e < s for e, s in zip(extra, strides)):
        raise ShapeError(f"conv_transpose: output_padding {list(extra)} must hold {r} values "
                         f"in [0, stride) for strides {list(strides)}")
    outs: list[Dim] = []
    for i, n in enumerate(x.shape[2:]):
        k = w.shape[2 + i]
        o = None if not isinstance(n, int) else \
            strides[i] * (n - 1) + extra[i] + dil[i] * (k - 1) + 1 - pads[i] - pads[r + i]
        if o is not None and o < 1:
            raise ShapeError(f"conv_transpose: spatial axis {i} has no output: input size {n}, "
                             f"kernel {k}, stride {strides[i]}, padding {pads[i]}+{pads[r + i]}")
        outs.append(o)
    c_out = w.shape[1] * group if isinstance(w.shape[1], int) else None
    if bias is not None and (bias.shape is None or dims_equal(bias.shape[0], c_out) is False):
        raise ShapeError(f"conv_transpose: bias must be [{c_out}], got {shape_str(bias.shape)}")
    return [TensorType(dt, (x.shape[0], c_out) + tuple(outs))]


def _conv_transpose_kernel(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                           strides, pads, dilations, group, output_padding) -> np.ndarray:
    r = x.ndim - 2
    strides, dil, pads = spatial({"strides": strides, "dilations": dilations, "pads": pads}, r)
    return conv_transpose_forward(x, w, b, strides, dil, pads, group,
                                  tuple(output_padding or (0,) * r))


def _conv_transpose_fallback(ctx: Any, node: Any) -> None:
    """The conv of x with zeros inserted between its elements (the strides) and the flipped,
    in/out-swapped weight, padded d*(K-1) - pads before: ConvTranspose without its kernel."""
    x, w = node.inputs[:2]
    group = node.attrs["group"]
    sizes = static_spatial("conv_transpose", x)
    r, kernel = len(sizes), tuple(w.type.shape[2:])
    strides, dil, pads = spatial(node.attrs, r)
    xz, grown = zero_insert(ctx, x.name, sizes, strides)
    begin = tuple(p - d * (k - 1) for p, d, k in zip(pads, dil, kernel))
    win = Window(kernel, (1,) * r, dil, begin, tuple(node.outputs[0].type.shape[2:]))
    w_mat = flipped_weight_matrix(ctx, w, group)
    conv_matmul(ctx, xz, grown, w_mat, win, group, w.type.shape[1] * group, node.outputs[0],
                _bias(node))


def _conv_transpose_lower(ctx: Any, node: Any) -> None:
    """ONNX ConvTranspose, except in float64: a conv of the zero-inserted input (im2col)."""
    if needs_fallback(node.inputs[0]):
        _conv_transpose_fallback(ctx, node)
        return
    a = node.attrs
    r = node.inputs[0].type.rank - 2
    strides, dil, pads = spatial(a, r)
    ctx.emit("ConvTranspose", node.inputs, node.outputs, strides=strides, dilations=dil,
             pads=pads, group=a["group"], output_padding=a["output_padding"] or (0,) * r,
             kernel_shape=node.inputs[1].type.shape[2:])


def _conv_transpose_vjp(b, c: Call, gys):
    """y = A_w^T x with A_w = conv(., w): dx = conv(g, w), dw = conv_weight_grad(g, x)."""
    x, w, g = c.inputs[0], c.inputs[1], gys[0]
    r = x.type.rank - 2
    strides, dil, pads = spatial(c.attrs, r)
    geo = {"strides": strides, "dilations": dil, "pads": pads, "group": c.attrs["group"]}
    out = [conv(g, w, None, **geo), conv_weight_grad(g, x, tuple(w.shape[2:]), **geo)]
    if len(c.inputs) > 2 and c.inputs[2] is not None:
        out.append(reduce_sum(g, (0,) + tuple(range(2, 2 + r))))
    return out + [None] * (len(c.inputs) - len(out))


register(OpDef("conv_transpose", _conv_transpose_infer, (2, 3), kernel=_conv_transpose_kernel,
               slots={1: "weight", 2: "bias"},
               widen=WIDEN_NONE,
               lower=_conv_transpose_lower, vjp=_conv_transpose_vjp,
               attrs={"strides": None, "pads": None, "dilations": None, "group": 1,
                      "output_padding": None},
               doc="ONNX ConvTranspose: x [N, C, S...], w [C, O/group, K...]; conv's adjoint."))


def conv_transpose(x: Tensor, w: Tensor, b: Tensor | None = None,
                   strides: Sequence[int] | None = None, pads: Sequence[int] | None = None,
                   dilations: Sequence[int] | None = None, group: int = 1,
                   output_padding: Sequence[int] | None = None) -> Tensor:
    """ONNX ConvTranspose with explicit pads [begins..., ends...]."""
    return x.b.apply1("conv_transpose", [x, w] if b is None else [x, w, b],
                      strides=None if strides is None else tuple(strides),
                      pads=None if pads is None else tuple(pads),
                      dilations=None if dilations is None else tuple(dilations),
                      group=int(group),
                      output_padding=None if output_padding is None else tuple(output_padding))


# -- conv_weight_grad --------------------------------------------------------------------------


def _weight_grad_infer(types: list, attrs: dict) -> list[TensorType]:
    x, gy = types
    dt = same_dtype(types)
    r = _check_rank("conv_weight_grad", x, "input")
    _check_rank("conv_weight_grad", gy, "output gradient")
    kernel, group = tuple(attrs["kernel_shape"]), attrs["group"]
    outs = out_dims("conv_weight_grad", x.shape[2:], kernel, attrs)
    if len(gy.shape) != r + 2 or any(dims_equal(a, o) is False
                                     for a, o in zip(gy.shape[2:], outs)):
        raise ShapeError(f"conv_weight_grad: output gradient {shape_str(gy.shape)} does not fit "
                         f"the conv output [N, O, {', '.join(map(str, outs))}]")
    c = x.shape[1] // group if isinstance(x.shape[1], int) else None
    return [TensorType(dt, (gy.shape[1], c) + kernel)]


def _weight_grad_kernel(x: np.ndarray, gy: np.ndarray, *, kernel_shape, strides, pads,
                        dilations, group) -> np.ndarray:
    """Stride 1 with one group, :data:`FLAT_MIN_CHANNELS` and a grid not much larger than the
    output: :func:`.conv_kernels.flat_weight_grad`; otherwise :func:`im2col_weight_grad`."""
    attrs = {"strides": strides, "pads": pads, "dilations": dilations}
    steps, dil, _ = spatial(attrs, len(kernel_shape))
    if group == 1 and set(steps) == {1} and min(x.shape[1], gy.shape[1]) >= FLAT_MIN_CHANNELS:
        grid = flat_grid(x.shape[2:], kernel_shape, dil,
                         resolve_pads("conv", x.shape[2:], kernel_shape, attrs), gy.shape[2:])
        if grid is not None:
            return flat_weight_grad(x, gy, grid)
    return im2col_weight_grad(x, gy, kernel_shape, attrs, group)


def im2col_weight_grad(x: np.ndarray, gy: np.ndarray, kernel_shape: Sequence[int],
                       attrs: dict, group: int) -> np.ndarray:
    """dW [O, C*K] = gy [O, N*out] @ cols [C*K, N*out]^T, per group."""
    cols = _columns(x, kernel_shape, attrs, gy.shape[2:])
    gyt = gy.swapaxes(0, 1)
    k = int(np.prod(kernel_shape))
    ws = [gg.reshape(len(gg), -1) @ cg.reshape(len(cg) * k, -1).T
          for gg, cg in zip(_groups(gyt, group), _groups(cols, group))]
    return (ws[0] if group == 1 else np.concatenate(ws)).reshape(
        (gy.shape[1], x.shape[1] // group, *kernel_shape))


def _weight_grad_fallback(ctx: Any, node: Any) -> None:
    """dW [G, O/G, C/G*K] = gy [G, O/G, N*out] @ columns(x) [G, N*out, C/G*K] (float64)."""
    x, gy = node.inputs
    a, group = node.attrs, node.attrs["group"]
    sizes = static_spatial("conv_weight_grad", x)
    outs = static_spatial("conv_weight_grad", gy, "output gradient")
    kernel = tuple(a["kernel_shape"])
    win = window(kernel, a["strides"], a["dilations"], a["pads"], outs)
    weight_grad_matmul(ctx, x, sizes, gy, win, group, node.outputs[0])


def _weight_grad_lower(ctx: Any, node: Any) -> None:
    """dW = Conv(x', gy') with batch and channels swapped: x' [C/G, G*N, S...] is the input,
    gy' [O, N, out...] the kernel, strides and dilations exchanged; cropped to the kernel.
    In float64 (no onnxruntime Conv kernel): im2col of x and one MatMul per group. Ungrouped
    convs with static channels and spatial dims take MatMuls instead (about the forward
    conv's rate, :mod:`.conv_grad_lowering`)."""
    if lower_weight_grad(ctx, node):
        return
    if needs_fallback(node.inputs[0]):
        _weight_grad_fallback(ctx, node)
        return
    x, gy = node.inputs
    a = node.attrs
    r, group = len(a["kernel_shape"]), a["group"]
    perm = (1, 0) + tuple(range(2, 2 + r))
    if group == 1:
        xt = ctx.emit("Transpose", [x], 1, perm=perm)[0]
        gt = ctx.emit("Transpose", [gy], 1, perm=perm)[0]
    else:
        sizes, outs = x.type.shape[2:], gy.type.shape[2:]
        c, o = x.type.shape[1] // group, gy.type.shape[1] // group
        xr = ctx.emit("Reshape", [x, ctx.const(np.array([0, group, c, *sizes]))], 1)[0]
        xr = ctx.emit("Transpose", [xr], 1, perm=(2, 1, 0) + tuple(range(3, 3 + r)))[0]
        xt = ctx.emit("Reshape", [xr, ctx.const(np.array([c, -1, *sizes]))], 1)[0]
        gr = ctx.emit("Reshape", [gy, ctx.const(np.array([0, group, o, *outs]))], 1)[0]
        gr = ctx.emit("Transpose", [gr], 1, perm=(1, 2, 0) + tuple(range(3, 3 + r)))[0]
        gt = ctx.emit("Reshape", [gr, ctx.const(np.array([group * o, -1, *outs]))], 1)[0]
    full = ctx.emit("Conv", [xt, gt], 1, strides=a["dilations"], dilations=a["strides"],
                    pads=a["pads"], group=group)[0]
    axes = np.arange(2, 2 + r)
    cut = ctx.emit("Slice", [full, ctx.const(np.zeros(r, np.int64)),
                             ctx.const(np.array(a["kernel_shape"], np.int64)),
                             ctx.const(axes)], 1)[0]
    ctx.emit("Transpose", [cut], node.outputs, perm=perm)


def _weight_grad_vjp(b, c: Call, gys):
    """Bilinear in (x, gy): d gy = conv(x, G), d x = conv's input gradient of gy through G."""
    x, gy, gw = c.inputs[0], c.inputs[1], gys[0]
    geo = {k: c.attrs[k] for k in ("strides", "pads", "dilations", "group")}
    gx, _ = conv_adjoints(x, gw, gy, geo)
    return [gx, conv(x, gw, None, **geo)]


register(OpDef("conv_weight_grad", _weight_grad_infer, (2, 2), kernel=_weight_grad_kernel,
               widen=WIDEN_NONE,
               lower=_weight_grad_lower, vjp=_weight_grad_vjp,
               attrs={"kernel_shape": REQUIRED, "strides": REQUIRED, "pads": REQUIRED,
                      "dilations": REQUIRED, "group": 1},
               doc="d<conv(x, w), gy>/dw: [O, C/group, K...]; conv's weight gradient."))


def conv_weight_grad(x: Tensor, gy: Tensor, kernel_shape: Sequence[int],
                     strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                     group: int = 1) -> Tensor:
    """The gradient w.r.t. the weight of ``conv(x, w)`` given its output gradient ``gy``."""
    return x.b.apply1("conv_weight_grad", [x, gy], kernel_shape=tuple(kernel_shape),
                      strides=tuple(strides), pads=tuple(pads), dilations=tuple(dilations),
                      group=int(group))
