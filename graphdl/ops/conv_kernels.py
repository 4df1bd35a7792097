"""The NumPy forward kernel of ``conv``: one of three ways, picked by the conv's shape, because
the right one differs by an order of magnitude between the convs real CNNs mix.

- pointwise (every kernel size 1, no padding): a plain (batched) matrix product of the weight
  with the input's pixels, strided first; no im2col copy.
- depthwise (one input channel per group, one output channel each, as in MobileNet and
  ShuffleNet): the padded input's shifted views, one per kernel tap, stacked and reduced
  against the taps by one batched product; for stride 1 each view is a contiguous run of
  whole padded rows, cropped once at the end. A per-group im2col there would make a Python
  loop over thousands of groups.
- otherwise im2col: columns [N, C, K..., out...] (one strided block copy per kernel offset)
  and one matrix product for all groups and batch items, w [G, O/G, C/G*K] @ cols
  [N, G, C/G*K, P]: no Python loop over groups.

Every path returns a fresh C-contiguous [N, O, out...] array of x's dtype with the bias added
in place.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .window import offset_slices, padded


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                 strides: Sequence[int], dil: Sequence[int], pads: Sequence[int],
                 group: int, outs: Sequence[int]) -> np.ndarray:
    """y = conv(x, w) + b with explicit geometry (pads resolved to [begins..., ends...])."""
    kernel = w.shape[2:]
    if group == x.shape[1] == w.shape[0] and w.shape[1] == 1:
        y = _depthwise(x, w, strides, dil, pads, outs)
    elif all(k == 1 for k in kernel) and not any(pads):
        y = _pointwise(x, w, strides, group, outs)
    else:
        y = _im2col_matmul(x, w, strides, dil, pads, group, outs)
    if b is not None:
        y += b.reshape((-1,) + (1,) * (x.ndim - 2))
    return y


def _grouped_matmul(w: np.ndarray, cols: np.ndarray, group: int,
                    outs: Sequence[int]) -> np.ndarray:
    """w [O, ...] times cols [N, C*K, P] per group: [N, O, out...]."""
    n, o = cols.shape[0], w.shape[0]
    w_g = w.reshape(group, o // group, -1)
    cols_g = cols.reshape(n, group, w_g.shape[2], -1)
    y = np.matmul(w_g[0] if group == 1 else w_g, cols_g[:, 0] if group == 1 else cols_g)
    return y.reshape((n, o, *outs))


def _pointwise(x: np.ndarray, w: np.ndarray, strides: Sequence[int], group: int,
               outs: Sequence[int]) -> np.ndarray:
    """A kernel of size 1 everywhere, unpadded: the strided pixels times the weight matrix."""
    if any(s != 1 for s in strides):
        x = x[(slice(None),) * 2 + tuple(slice(None, None, s) for s in strides)]
    cols = np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)
    return _grouped_matmul(w, cols, group, outs)


def _columns(x: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
             dil: Sequence[int], pads: Sequence[int], outs: Sequence[int]) -> np.ndarray:
    """im2col: [N, C, K..., out...], one strided block copy per kernel offset."""
    xp = padded(x, pads)
    n, c = x.shape[:2]
    cols = np.empty((n, c, *kernel, *outs), x.dtype)
    lead = (slice(None), slice(None))
    for off in np.ndindex(*kernel):
        cols[lead + off] = xp[lead + offset_slices(off, strides, dil, outs)]
    return cols


def _im2col_matmul(x: np.ndarray, w: np.ndarray, strides: Sequence[int],
                   dil: Sequence[int], pads: Sequence[int], group: int,
                   outs: Sequence[int]) -> np.ndarray:
    cols = _columns(x, w.shape[2:], strides, dil, pads, outs)
    return _grouped_matmul(w, cols.reshape(x.shape[0], -1, int(np.prod(outs))), group, outs)


def _depthwise(x: np.ndarray, w: np.ndarray, strides: Sequence[int], dil: Sequence[int],
               pads: Sequence[int], outs: Sequence[int]) -> np.ndarray:
    """y[:, c] = sum over taps t of w[c, 0, t] * (x[:, c] shifted by t). With stride 1 the
    shifts are offsets into the flattened padded map, so every view is long and contiguous."""
    if any(s != 1 for s in strides):
        return _depthwise_strided(x, w, strides, dil, pads, outs)
    n, c, r = x.shape[0], x.shape[1], len(outs)
    sizes = [x.shape[2 + i] + pads[i] + pads[r + i] for i in range(r)]
    steps = [int(np.prod(sizes[i + 1:])) for i in range(r)]  # flat stride of each axis
    offsets = [sum(o * d * st for o, d, st in zip(off, dil, steps))
               for off in np.ndindex(*w.shape[2:])]
    length = outs[0] * steps[0]  # whole rows of the padded map: long contiguous views
    flat = np.zeros((n, c, max(offsets) + length), x.dtype)  # zero pads, zero tail
    core = flat[:, :, :int(np.prod(sizes))].reshape((n, c, *sizes))
    core[(slice(None),) * 2 + tuple(slice(p, p + m) for p, m in zip(pads, x.shape[2:]))] = x
    y = _tap_sum([flat[:, :, o:o + length] for o in offsets], w.reshape(c, -1), 1)
    crop = y.reshape((n, c, outs[0], *sizes[1:]))[(Ellipsis,) + tuple(slice(m) for m in
                                                                       outs[1:])]
    return np.ascontiguousarray(crop)


def _depthwise_strided(x: np.ndarray, w: np.ndarray, strides: Sequence[int],
                       dil: Sequence[int], pads: Sequence[int], outs: Sequence[int]
                       ) -> np.ndarray:
    """The strided case: the taps are strided views of the padded input."""
    xp = padded(x, pads)
    lead = (slice(None), slice(None))
    views = [xp[lead + offset_slices(off, strides, dil, outs)]
             for off in np.ndindex(*w.shape[2:])]
    return _tap_sum(views, w.reshape(x.shape[1], -1), len(outs))


def _tap_sum(views: list[np.ndarray], taps: np.ndarray, r: int) -> np.ndarray:
    """sum_j views[j] * taps[:, j] per channel (axis 1): the views stacked [N, C, K, ...] (one
    block copy each), then one batched product with the taps [C, 1, K]."""
    n, c = views[0].shape[:2]
    cols = np.empty((n, c, len(views), *views[0].shape[2:]), views[0].dtype)
    for j, view in enumerate(views):
        cols[:, :, j] = view
    y = np.matmul(taps[:, None, :], cols.reshape(n, c, len(views), -1))
    return y.reshape(views[0].shape)
