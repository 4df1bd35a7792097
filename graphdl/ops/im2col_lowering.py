"""ONNX lowerings of window ops through Pad / Slice / Concat / MatMul, for the dtypes stock
onnxruntime has no kernel of: its CPU provider registers ``Conv``, ``ConvTranspose``,
``AveragePool``, ``GlobalAveragePool`` and ``LRN`` for float32 only (onnxruntime 1.32,
``onnxruntime.capi._pybind_state.get_all_opkernel_def()``), while ``Pad``, ``Slice``,
``Concat``, ``Sum``, ``MatMul`` and ``Reshape`` have float64 kernels.

The helpers mirror the interpreter's im2col (:mod:`graphdl.ops.window`): one strided ``Slice``
per kernel offset. Spatial dims must be static; the batch dim stays symbolic (Reshape's 0).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from ..core.errors import OnnxError
from ..core.types import shape_str

#: the dtypes whose window ops export through these helpers: onnxruntime's CPU provider has
#: MatMul for them but no Conv / ConvTranspose / AveragePool / LRN (float16 has neither, so it
#: keeps the standard op)
FALLBACK_DTYPES = (np.dtype(np.float64),)
INT64_MIN = np.iinfo(np.int64).min


class Window(NamedTuple):
    """Where each kernel offset reads: input position ``begin + o * dil + i * stride`` (in the
    unpadded input; a negative ``begin`` is padding) for output index ``i < out``."""
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dil: tuple[int, ...]
    begin: tuple[int, ...]
    outs: tuple[int, ...]


def needs_fallback(v: Any) -> bool:
    """Whether onnxruntime lacks the window op's kernel for the dtype of value ``v``."""
    return np.dtype(v.type.dtype.np) in FALLBACK_DTYPES


def static_spatial(op: str, v: Any, what: str = "input") -> tuple[int, ...]:
    """v's spatial dims (all but the first two), which the fallback needs statically."""
    shape = v.type.shape
    if shape is None or not all(isinstance(n, int) for n in shape[1:]):
        raise OnnxError(f"{op}: exporting {v.type.dtype.name} needs static channel and spatial "
                        f"dims (onnxruntime has no {v.type.dtype.name} kernel, so graphdl "
                        f"emits im2col), got {what} {shape_str(shape)}")
    return tuple(shape[2:])


def window(kernel: Sequence[int], strides: Sequence[int], dil: Sequence[int],
           pads: Sequence[int], outs: Sequence[int]) -> Window:
    """A Window from ONNX attributes (pads [begins..., ends...]: only the begins matter, the
    output sizes fix how far the windows reach)."""
    return Window(tuple(kernel), tuple(strides), tuple(dil),
                  tuple(-p for p in pads[:len(kernel)]), tuple(outs))


def ints(ctx: Any, values: Sequence[int]) -> str:
    """An int64 vector constant (shapes, axes, pads, slice bounds) for a lowering."""
    return ctx.const(np.asarray(values, np.int64))


def window_slices(ctx: Any, x: str, sizes: Sequence[int], win: Window, axis: int = 2,
                  trailing: int = 0) -> list[str]:
    """One strided slice of x per kernel offset (row-major), each [..., out..., ...]: the
    values that offset sees in every window. x's spatial axes start at ``axis`` and are
    followed by ``trailing`` other axes (1 for channels-last); x is zero padded where the
    windows reach past it. An offset whose slice would be all of x (stride 1, as many outputs
    as inputs: the centre of an odd kernel with "same" padding) takes x itself."""
    r = len(sizes)
    lo = [max(0, -b) for b in win.begin]
    hi = [max(0, b + d * (k - 1) + s * (o - 1) + 1 - n) for b, d, k, s, o, n
          in zip(win.begin, win.dil, win.kernel, win.strides, win.outs, sizes)]
    unpadded = x
    if any(lo) or any(hi):
        rest = [0] * trailing
        pads = [0] * axis + lo + rest + [0] * axis + hi + rest
        x = ctx.emit("Pad", [x, ints(ctx, pads)])[0]
    axes = ints(ctx, range(axis, axis + r))
    steps = ints(ctx, win.strides)
    whole = all(s == 1 for s in win.strides) and tuple(win.outs) == tuple(sizes)
    out = []
    for off in np.ndindex(*win.kernel):
        starts = [b + p + o * d for b, p, o, d in zip(win.begin, lo, off, win.dil)]
        if whole and starts == lo:  # the offset that sees x itself (a 3x3 kernel's centre)
            out.append(unpadded)
            continue
        ends = [a + s * (n - 1) + 1 for a, s, n in zip(starts, win.strides, win.outs)]
        out += ctx.emit("Slice", [x, ints(ctx, starts), ints(ctx, ends), axes, steps])
    return out


def columns(ctx: Any, x: str, sizes: Sequence[int], win: Window) -> str:
    """im2col of x [N, C, S...]: the columns [N, C, K, out...], K the kernel offsets."""
    x1 = ctx.emit("Unsqueeze", [x, ints(ctx, [2])])[0]
    pieces = window_slices(ctx, x1, sizes, win, axis=3)
    if len(pieces) == 1:
        return pieces[0]
    return ctx.emit("Concat", pieces, axis=2)[0]


def reshape(ctx: Any, x: str, target: Sequence[int], out: Any = 1) -> str:
    """x reshaped (0 keeps the input's dim there, -1 is inferred)."""
    return ctx.emit("Reshape", [x, ints(ctx, target)], out if isinstance(out, int)
                    else [out])[0]


def weight_matrix(ctx: Any, w: Any, group: int) -> str:
    """Conv's weight [O, C/G, K...] as the per-group matrices [G, O/G, C/G * K]."""
    o = w.type.shape[0]
    if not isinstance(o, int):
        raise OnnxError(f"conv: the im2col export needs a static number of output channels, "
                        f"got weight {shape_str(w.type.shape)}")
    return reshape(ctx, w.name, [group, o // group, -1])


def flipped_weight_matrix(ctx: Any, w: Any, group: int) -> str:
    """ConvTranspose's weight [C, O/G, K...] as the matrices [G, O/G, C/G * K] of the conv it
    equals on the zero-inserted input: in and out channels swapped per group, kernel flipped
    (reversing the row-major flat kernel index flips every kernel axis)."""
    c, o_g = w.type.shape[:2]
    wr = reshape(ctx, w.name, [group, c // group, o_g, -1])
    flip = ctx.emit("Slice", [wr, ints(ctx, [-1]), ints(ctx, [INT64_MIN]), ints(ctx, [3]),
                              ints(ctx, [-1])])[0]
    wt = ctx.emit("Transpose", [flip], perm=(0, 2, 1, 3))[0]
    return reshape(ctx, wt, [group, o_g, -1])


def weight_grad_matmul(ctx: Any, x: Any, sizes: Sequence[int], gy: Any, win: Window,
                       group: int, out: Any) -> None:
    """Conv's weight gradient [O, C/G, K...] = per group, gy [G, O/G, N*out] @ the columns of
    x [G, N*out, C/G*K]; written to ``out``."""
    p, (c, o) = int(np.prod(win.outs)), (x.type.shape[1], gy.type.shape[1])
    cols = reshape(ctx, columns(ctx, x.name, sizes, win), [0, group, -1, p])
    cols = ctx.emit("Transpose", [cols], perm=(1, 0, 3, 2))[0]
    cols = reshape(ctx, cols, [group, -1, c // group * int(np.prod(win.kernel))])
    g = reshape(ctx, gy.name, [0, group, o // group, p])
    g = ctx.emit("Transpose", [g], perm=(1, 2, 0, 3))[0]
    g = reshape(ctx, g, [group, o // group, -1])
    dw = ctx.emit("MatMul", [g, cols])[0]
    reshape(ctx, dw, [o, c // group, *win.kernel], out)


def conv_matmul(ctx: Any, x: str, sizes: Sequence[int], w_mat: str, win: Window,
                group: int, c_out: int, out: Any, bias: Any = None) -> None:
    """y [N, O, out...] = per group, w_mat [G, O/G, C/G*K] @ columns [N, G, C/G*K, out],
    plus bias [O]; written to ``out``."""
    cols = columns(ctx, x, sizes, win)
    cols = reshape(ctx, cols, [0, group, -1, int(np.prod(win.outs))])
    y = ctx.emit("MatMul", [w_mat, cols])[0]
    target = [0, c_out, *win.outs]
    if bias is None:
        reshape(ctx, y, target, out)
        return
    y = reshape(ctx, y, target)
    b = reshape(ctx, bias if isinstance(bias, str) else bias.name,
                [-1] + [1] * len(win.outs))
    ctx.emit("Add", [y, b], [out])


def zero_insert(ctx: Any, x: str, sizes: Sequence[int], strides: Sequence[int]
                ) -> tuple[str, tuple[int, ...]]:
    """x [N, C, S...] with ``stride - 1`` zeros after every element of each spatial axis
    (Unsqueeze, Pad, Reshape): the input of ConvTranspose as an ordinary conv."""
    if all(s == 1 for s in strides):
        return x, tuple(sizes)
    r = len(sizes)
    axes = [3 + 2 * i for i in range(r)]
    x = ctx.emit("Unsqueeze", [x, ints(ctx, axes)])[0]
    ends = [0] * (2 + 2 * r)
    for i, s in enumerate(strides):
        ends[axes[i]] = s - 1
    x = ctx.emit("Pad", [x, ints(ctx, [0] * (2 + 2 * r) + ends)])[0]
    grown = tuple(n * s for n, s in zip(sizes, strides))
    return reshape(ctx, x, [0, 0, *grown]), grown
