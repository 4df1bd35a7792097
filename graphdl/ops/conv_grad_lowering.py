"""Conv's weight gradient as MatMuls in standard ONNX, at about the forward conv's rate.

ONNX has no weight-gradient op. The textbook lowering, a ``Conv`` of the transposed input with
the output gradient as its kernel, runs at a quarter of the forward conv's rate in onnxruntime's
CPU provider (its kernel is [O, N, P, Q]: huge and used once). Writing
``dW[o, c, k] = sum over n, p of dY[n, o, p] * x[n, c, p * stride + k * dilation - pad]`` as
matrix products instead, one of two plans:

- ``taps``: x transposed once to channels-last [N, S..., C] (padded), then per kernel offset
  k one strided Slice reshaped to [N*P, C] and one MatMul of dY^T [O, N*P] with it: K
  products of [O, N*P] x [N*P, C], concatenated. No [N*P, K*C] column matrix is ever built,
  and channels-last makes every slice copy runs of width * C contiguous values (with
  channels-first, [C, N, S...], the runs are one row: the same plan was 20-60% slower).
- ``batched``: the strided slices of x itself concatenated into columns [N, K*C, P], one
  batched MatMul with dY^T [N, P, O], and a ReduceSum over the batch. No Transpose of x; the
  cheaper plan when the columns are small: 1x1 kernels (the columns are x itself, or its
  strided slice) and convs with few input channels (a network's first layer).

Cost model (:func:`plan`), from ``benchmarks/bench_conv_grads.py`` on the CIFAR ResNet's layers
(batch 32, onnxruntime 1.32, one thread; ms for the forward conv / old lowering / taps /
batched): 16->16 at 32x32 3x3: 1.8 / 6.9 / 2.3 / 4.2; 16->32 3x3 stride 2: 1.1 / 2.8 / 1.5 /
2.7; 32->32 at 16x16: 1.4 / 4.4 / 1.5 / 2.8; 64->64 at 8x8: 1.1 / 2.7 / 1.0 / 2.0;
16->32 1x1 stride 2: 0.10 / 1.9 / 0.22 / 0.19; 3->16 at 32x32 3x3: 0.33 / 1.4 / 1.6 / 0.56.
So ``batched`` when the column matrix has at most :data:`SMALL_COLUMNS` rows per batch item
(K*C), else ``taps``.

The input gradient stays ONNX ``ConvTranspose``: on the same layers it ran at the forward
conv's rate (1.8 ms at 16->16 32x32), faster than a ``Conv`` with the flipped weight (2.5 ms).

Both plans need group 1 and static channel and spatial dims (the batch stays symbolic);
:func:`lower_weight_grad` returns False otherwise and the caller keeps its general lowering.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .im2col_lowering import reshape, window, window_slices

#: the most column rows per batch item (kernel offsets x input channels) for the batched plan
SMALL_COLUMNS = 32


def plan(channels: int, kernel: Sequence[int]) -> str:
    """``batched`` for small column matrices (1x1 kernels, few input channels), else
    ``taps``; see the module docstring for the measurements."""
    return "batched" if channels * int(np.prod(kernel)) <= SMALL_COLUMNS else "taps"


def _static(v: Any) -> bool:
    shape = v.type.shape
    return shape is not None and all(isinstance(d, int) for d in shape[1:])


def lower_weight_grad(ctx: Any, node: Any) -> bool:
    """Emits ``conv_weight_grad`` ``node`` as MatMuls (plan by :func:`plan`); False (nothing
    emitted) for grouped convs or non-static channel / spatial dims."""
    x, gy = node.inputs
    a = node.attrs
    if a["group"] != 1 or not (_static(x) and _static(gy)):
        return False
    kernel = tuple(a["kernel_shape"])
    sizes, outs = tuple(x.type.shape[2:]), tuple(gy.type.shape[2:])
    win = window(kernel, a["strides"], a["dilations"], a["pads"], outs)
    c, o = x.type.shape[1], gy.type.shape[1]
    r = len(kernel)
    if plan(c, kernel) == "batched":
        per_tap = _batched(ctx, x.name, gy.name, sizes, win, c, o)  # [K*C, O]
        grid = reshape(ctx, per_tap, [*kernel, c, o])
        ctx.emit("Transpose", [grid], node.outputs, perm=(r + 1, r) + tuple(range(r)))
    else:
        per_tap = _taps(ctx, x.name, gy.name, sizes, win, c, o)  # [O, K*C]
        grid = reshape(ctx, per_tap, [o, *kernel, c])
        ctx.emit("Transpose", [grid], node.outputs, perm=(0, r + 1) + tuple(range(1, r + 1)))
    return True


def _taps(ctx: Any, x: str, gy: str, sizes: tuple, win: Any, c: int, o: int) -> str:
    """[O, K*C]: per kernel offset, dY^T [O, N*P] @ x's strided slice [N*P, C], x taken
    channels-last so that every slice copies runs of (width * C) contiguous values."""
    r = len(sizes)
    x_last = ctx.emit("Transpose", [x], perm=(0,) + tuple(range(2, 2 + r)) + (1,))[0]
    gt = ctx.emit("Transpose", [gy], perm=(1, 0) + tuple(range(2, 2 + r)))[0]
    rows = reshape(ctx, gt, [o, -1])
    mats = [ctx.emit("MatMul", [rows, reshape(ctx, s, [-1, c])])[0]
            for s in window_slices(ctx, x_last, sizes, win, axis=1, trailing=1)]
    return mats[0] if len(mats) == 1 else ctx.emit("Concat", mats, axis=1)[0]


def _trivial(win: Any, sizes: tuple) -> bool:
    """Whether the only window slice is x itself (1x1, stride 1, no padding)."""
    return (all(k == 1 for k in win.kernel) and all(s == 1 for s in win.strides)
            and all(b == 0 for b in win.begin) and tuple(win.outs) == tuple(sizes))


def _batched(ctx: Any, x: str, gy: str, sizes: tuple, win: Any, c: int, o: int) -> str:
    """[K*C, O]: sum over the batch of columns [N, K*C, P] @ dY^T [N, P, O]."""
    pieces = [x] if _trivial(win, sizes) else window_slices(ctx, x, sizes, win)
    cols = pieces[0] if len(pieces) == 1 else ctx.emit("Concat", pieces, axis=1)[0]
    cols = reshape(ctx, cols, [0, len(pieces) * c, -1])
    g = reshape(ctx, gy, [0, o, -1])
    gt = ctx.emit("Transpose", [g], perm=(0, 2, 1))[0]
    prod = ctx.emit("MatMul", [cols, gt])[0]
    return ctx.emit("ReduceSum", [prod, ctx.const(np.array([0], np.int64))], keepdims=0)[0]
