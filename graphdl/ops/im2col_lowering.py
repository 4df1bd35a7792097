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

from ..errors import OnnxError
from ..types import shape_str

#: the float dtypes onnxruntime's CPU provider has Conv / ConvTranspose / AveragePool / LRN for
ORT_WINDOW_DTYPES = (np.dtype(np.float32),)
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
    return np.dtype(v.type.dtype.np) not in ORT_WINDOW_DTYPES


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


def _const(ctx: Any, values: Sequence[int]) -> str:
    return ctx.const(np.asarray(values, np.int64))


def window_slices(ctx: Any, x: str, sizes: Sequence[int], win: Window, axis: int = 2
                  ) -> list[str]:
    """One strided slice of x per kernel offset (row-major), each [..., out...]: the values
    that offset sees in every window. x's spatial axes start at ``axis``; x is zero padded
    where the windows reach past it."""
    r = len(sizes)
    lo = [max(0, -b) for b in win.begin]
    hi = [max(0, b + d * (k - 1) + s * (o - 1) + 1 - n) for b, d, k, s, o, n
          in zip(win.begin, win.dil, win.kernel, win.strides, win.outs, sizes)]
    if any(lo) or any(hi):
        pads = [0] * axis + lo + [0] * axis + hi
        x = ctx.emit("Pad", [x, _const(ctx, pads)])[0]
    axes = _const(ctx, range(axis, axis + r))
    steps = _const(ctx, win.strides)
    out = []
    for off in np.ndindex(*win.kernel):
        starts = [b + p + o * d for b, p, o, d in zip(win.begin, lo, off, win.dil)]
        ends = [a + s * (n - 1) + 1 for a, s, n in zip(starts, win.strides, win.outs)]
        out += ctx.emit("Slice", [x, _const(ctx, starts), _const(ctx, ends), axes, steps])
    return out


def columns(ctx: Any, x: str, sizes: Sequence[int], win: Window) -> str:
    """im2col of x [N, C, S...]: the columns [N, C, K, out...], K the kernel offsets."""
    x1 = ctx.emit("Unsqueeze", [x, _const(ctx, [2])])[0]
    pieces = window_slices(ctx, x1, sizes, win, axis=3)
    if len(pieces) == 1:
        return pieces[0]
    return ctx.emit("Concat", pieces, axis=2)[0]


def reshape(ctx: Any, x: str, target: Sequence[int], out: Any = 1) -> str:
    """x reshaped (0 keeps the input's dim there, -1 is inferred)."""
    return ctx.emit("Reshape", [x, _const(ctx, target)], out if isinstance(out, int)
                    else [out])[0]


def weight_matrix(ctx: Any, w: Any, group: int) -> str:
    """Conv's weight [O, C/G, K...] as the per-group matrices [G, O/G, C/G * K]."""
    o = w.type.shape[0]
    if not isinstance(o, int):
        raise OnnxError(f"conv: the im2col export needs a static number of output channels, "
                        f"got weight {shape_str(w.type.shape)}")
    return reshape(ctx, w.name, [group, o // group, -1])


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
