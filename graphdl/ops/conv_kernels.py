"""The NumPy kernels of ``conv`` and (at the end) ``conv_transpose``. Conv takes one of four
ways, picked by the conv's shape, because the right one differs by an order of magnitude
between the convs real CNNs mix.

- pointwise (every kernel size 1, no padding): a plain (batched) matrix product of the weight
  with the input's pixels, strided first; no im2col copy.
- depthwise (one input channel per group, one output channel each, as in MobileNet and
  ShuffleNet): the padded input's shifted views, one per kernel tap, stacked and reduced
  against the taps by one batched product; for stride 1 each view is a contiguous run of
  whole padded rows, cropped once at the end. A per-group im2col there would make a Python
  loop over thousands of groups.
- otherwise, one group: im2col in blocks of images (:func:`blocked_im2col`): per block, the
  columns (one strided block copy per kernel offset) and one product w [O, C*K] @ cols
  written straight into the output, blocks sized so that the columns are still in cache
  when the product reads them;
- groups: the columns of the whole batch and w [G, O/G, C/G*K] @ cols [N, G, C/G*K, P]
  batched: no Python loop over groups.

Every path returns a fresh C-contiguous [N, O, out...] array of x's dtype with the bias added
in place. :func:`flat_weight_grad`, conv_weight_grad's stride-1 kernel, works on the flat padded
grid of :class:`_FlatGrid` (each tap's window one contiguous run).
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
    elif group == 1:
        y = blocked_im2col(x, w, strides, dil, pads, outs)
    else:
        y = _grouped_im2col(x, w, strides, dil, pads, group, outs)
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


#: the fewest input channels (and, for the weight gradient, output channels) for the flat
#: grid: with an RGB stem's 3 its per-tap products (weight gradient: 1.08x im2col's time)
#: and its padded copy (conv columns: 1.13x the strided copies') cost more than they save
#: (``python benchmarks/bench_interp_kernels.py``)
FLAT_MIN_CHANNELS = 16

#: bytes of im2col columns per block of images (half a 2 MiB L2 cache, common on x86 servers):
#: each block's columns are still in cache when its product reads them
BLOCK_BYTES = 1 << 20


def blocked_im2col(x: np.ndarray, w: np.ndarray, strides: Sequence[int], dil: Sequence[int],
                   pads: Sequence[int], outs: Sequence[int], block_bytes: int = BLOCK_BYTES,
                   flat: bool = True) -> np.ndarray:
    """One group: per block of images, columns [m, C*K, P] (one copy per kernel offset) and
    one batched product w [O, C*K] @ cols into y. The whole batch's columns would be written
    to memory and read back; a block's stay in cache (``python
    benchmarks/bench_interp_kernels.py``, blocks / whole batch: see :func:`_blocks`' figures).
    At stride 1 with :data:`FLAT_MIN_CHANNELS` (and ``flat``) the columns are taken on the
    flat padded grid (:class:`_FlatGrid`), each offset's copy one contiguous run per
    channel, and the product's extra grid columns are cropped: flat grid / strided copies
    0.87 at 16 channels 32x32, 0.91 at 56x56, 1.00 at 64 channels 8x8 in the same benchmark."""
    n, c, o = x.shape[0], x.shape[1], w.shape[0]
    kernel = w.shape[2:]
    grid = flat_grid(x.shape[2:], kernel, dil, pads, outs) \
        if flat and set(strides) == {1} and c >= FLAT_MIN_CHANNELS else None
    p = grid.length if grid is not None else int(np.prod(outs))
    block = _blocks(n, c * int(np.prod(kernel)) * p * x.itemsize, block_bytes)
    xp, wm = (x if grid is not None else padded(x, pads)), w.reshape(o, -1)
    y = np.empty((n, o, *outs), x.dtype)
    cols = np.empty((block, c, *kernel, *(outs if grid is None else (p,))), x.dtype)
    on_grid = None if grid is None else np.empty((block, o, p), x.dtype)
    for n0 in range(0, n, block):
        m = min(block, n - n0)
        if grid is None:
            for off in np.ndindex(*kernel):
                cols[(slice(0, m), slice(None)) + off] = \
                    xp[(slice(n0, n0 + m), slice(None)) + offset_slices(off, strides, dil, outs)]
            np.matmul(wm, cols[:m].reshape(m, -1, p), out=y[n0:n0 + m].reshape(m, o, p))
            continue
        on_flat = grid.flat(xp[n0:n0 + m])
        taps = cols[:m].reshape(m, c, -1, p)
        for t, off in enumerate(grid.offsets):
            taps[:, :, t] = on_flat[:, :, off:off + p]
        np.matmul(wm, cols[:m].reshape(m, -1, p), out=on_grid[:m])
        y[n0:n0 + m] = grid.outputs(on_grid[:m])
    return y


def _blocks(n: int, per_image: int, block_bytes: int) -> int:
    """Images per block: as many as fit ``block_bytes`` of columns, at least one.
    ``python benchmarks/bench_interp_kernels.py``, blocks of 1 MiB / the whole batch at once
    (batch 32, 3x3, one thread): 0.65 at 16 channels 32x32, 0.75 at 32 channels 16x16, 0.83
    at 64 channels 8x8, 0.60 at 16 channels 56x56, 0.72 for a DenseNet-like 128 -> 32 at
    14x14, 0.79 and 0.92 at stride 2, 0.88 for an RGB stem."""
    return max(1, min(n, block_bytes // max(per_image, 1)))


def _grouped_im2col(x: np.ndarray, w: np.ndarray, strides: Sequence[int],
                    dil: Sequence[int], pads: Sequence[int], group: int,
                    outs: Sequence[int]) -> np.ndarray:
    """Groups: w [G, O/G, C/G*K] @ cols [N, G, C/G*K, P], one batched product (no Python loop
    over groups)."""
    cols = _columns(x, w.shape[2:], strides, dil, pads, outs)
    return _grouped_matmul(w, cols.reshape(x.shape[0], -1, int(np.prod(outs))), group, outs)


class _FlatGrid:
    """Stride-1 taps as offsets into the flattened padded input: tap t of output position p
    reads flat[p + offsets[t]], so each tap's view of all outputs is one contiguous run of
    ``length`` (whole rows of the padded map; the columns past each row's outputs are
    computed too and cropped at the end)."""

    def __init__(self, spatial: Sequence[int], kernel: Sequence[int], dil: Sequence[int],
                 pads: Sequence[int], outs: Sequence[int]):
        r = len(outs)
        self.spatial, self.pads, self.outs = tuple(spatial), pads, outs
        self.kernel = tuple(kernel)
        self.sizes = [spatial[i] + pads[i] + pads[r + i] for i in range(r)]
        steps = [int(np.prod(self.sizes[i + 1:])) for i in range(r)]  # flat stride per axis
        self.offsets = [sum(o * d * st for o, d, st in zip(off, dil, steps))
                        for off in np.ndindex(*kernel)]
        self.length = outs[0] * steps[0]
        self.total = max(self.offsets) + self.length

    def flat(self, x: np.ndarray) -> np.ndarray:
        """x zero-padded and flattened: [N, C, total] (zero pads, zero tail)."""
        n, c = x.shape[:2]
        flat = np.zeros((n, c, self.total), x.dtype)
        core = flat[:, :, :int(np.prod(self.sizes))].reshape((n, c, *self.sizes))
        core[(slice(None),) * 2 + tuple(slice(p, p + m) for p, m in
                                         zip(self.pads, self.spatial))] = x
        return flat

    def outputs(self, y: np.ndarray) -> np.ndarray:
        """[N, O, length] on the padded grid -> a view [N, O, out...] of its outputs."""
        n, o = y.shape[:2]
        grid = y.reshape((n, o, self.outs[0], *self.sizes[1:]))
        return grid[(Ellipsis,) + tuple(slice(m) for m in self.outs[1:])]

    def crop(self, y: np.ndarray) -> np.ndarray:
        """[N, O, length] on the padded grid -> a fresh [N, O, out...]."""
        return np.ascontiguousarray(self.outputs(y))


def flat_grid(spatial: Sequence[int], kernel: Sequence[int], dil: Sequence[int],
              pads: Sequence[int], outs: Sequence[int], most: float = 1.6
              ) -> "_FlatGrid | None":
    """The flat grid of a stride-1 window when it is at most ``most`` times the output's size
    (beyond that the extra positions computed cost more than the copies saved), else None.
    ``python benchmarks/bench_interp_kernels.py``, flat / im2col weight gradient (batch 32,
    3x3, one thread): 0.45 at 16 channels 32x32 (grid 1.13x the output), 0.30 at 56x56
    (1.07x), 0.77 at 32 channels 16x16 (1.27x), 0.89 at 64 channels 14x14 (1.32x), 0.95 at
    8x8 (1.59x)."""
    grid = _FlatGrid(spatial, kernel, dil, pads, outs)
    return grid if grid.total <= most * max(int(np.prod(outs)), 1) else None


#: positions per block of the flat weight gradient: the length of each product's sum
FLAT_BLOCK_ROWS = 2048


def flat_weight_grad(x: np.ndarray, gy: np.ndarray, grid: "_FlatGrid",
                     block_rows: int = FLAT_BLOCK_ROWS) -> np.ndarray:
    """A stride-1, one-group conv's weight gradient [O, C, K...] without im2col: x padded onto
    the flat grid channels-last with the batch folded in, [N * total, C], and gy placed on
    the same grid (zeros elsewhere), [N * total, O]; tap t's [O, C] is gy's rows times x's
    rows shifted by the tap's offset. Windows never reach into the next image (each image's
    grid ends in its own zero tail), so the zeros of gy's grid drop exactly the positions
    that are not outputs. The rows go in blocks (of :data:`FLAT_BLOCK_ROWS`), all taps per
    block, so that a block of gy is read from cache K times (figures: :func:`flat_grid`)."""
    n, c, o = x.shape[0], x.shape[1], gy.shape[1]
    xa = _flat_last(x, grid.total, grid.sizes, [slice(p, p + m) for p, m in
                                                zip(grid.pads, grid.spatial)])
    ga = _flat_last(gy, grid.total, [grid.outs[0], *grid.sizes[1:]],
                    [slice(m) for m in grid.outs])
    rows = n * grid.total - max(grid.offsets)
    dw, part = np.zeros((len(grid.offsets), o, c), x.dtype), np.empty((o, c), x.dtype)
    for r0 in range(0, rows, block_rows):
        r1 = min(rows, r0 + block_rows)
        g = ga[r0:r1].T
        for t, off in enumerate(grid.offsets):
            dw[t] += np.matmul(g, xa[off + r0:off + r1], out=part)
    return np.ascontiguousarray(dw.transpose(1, 2, 0)).reshape((o, c, *grid.kernel))


def _flat_last(a: np.ndarray, total: int, sizes: Sequence[int],
               place: Sequence[slice]) -> np.ndarray:
    """a [N, C, S...] channels-last at ``place`` of a zero grid of ``sizes`` per image, each
    image's grid flattened into ``total`` rows (zeros after it): [N * total, C]."""
    n, c = a.shape[:2]
    flat = np.zeros((n, total, c), a.dtype)
    core = flat[:, :int(np.prod(sizes))].reshape((n, *sizes, c))
    core[(slice(None),) + tuple(place)] = np.moveaxis(a, 1, -1)
    return flat.reshape(-1, c)


def _depthwise(x: np.ndarray, w: np.ndarray, strides: Sequence[int], dil: Sequence[int],
               pads: Sequence[int], outs: Sequence[int]) -> np.ndarray:
    """y[:, c] = sum over taps t of w[c, 0, t] * (x[:, c] shifted by t). With stride 1 the
    shifts are offsets into the flattened padded map, so every view is long and contiguous."""
    if any(s != 1 for s in strides):
        return _depthwise_strided(x, w, strides, dil, pads, outs)
    grid = _FlatGrid(x.shape[2:], w.shape[2:], dil, pads, outs)
    flat, span = grid.flat(x), grid.length
    y = _tap_sum([flat[:, :, o:o + span] for o in grid.offsets], w.reshape(x.shape[1], -1), 1)
    return grid.crop(y)


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


#: the smallest input map (pixels) on which a stride-1 ConvTranspose runs as the flipped conv
CONV_PATH_PIXELS = 256


def conv_transpose_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                           strides: Sequence[int], dil: Sequence[int], pads: Sequence[int],
                           group: int, extra: Sequence[int]) -> np.ndarray:
    """ConvTranspose with explicit geometry (``extra``: output_padding): a kernel nowhere
    longer than the stride takes :func:`_pixel_shuffle`; stride 1 on maps of at least
    :data:`CONV_PATH_PIXELS` pixels the forward conv on the flipped, in/out-swapped weight;
    everything else :func:`col2im`. On small maps col2im's one product and K adds beat
    the conv's column copy (``python benchmarks/bench_interp_kernels.py``, flipped conv /
    col2im: 0.36 at 32x32, 0.63 at 16x16, 0.99 at 8x8, 1.75 at the digits CNN's 4x4)."""
    r, kernel, sizes = x.ndim - 2, w.shape[2:], x.shape[2:]
    if set(dil) == {1} and all(k <= s for k, s in zip(kernel, strides)) and set(strides) != {1}:
        return _pixel_shuffle(x, w, b, strides, pads, group, extra)
    reach = [d * (k - 1) for d, k in zip(dil, kernel)]
    conv_pads = [m - p for m, p in zip(reach, pads[:r])] + \
        [m - p + e for m, p, e in zip(reach, pads[r:], extra)]
    if set(strides) == {1} and min(conv_pads) >= 0 and np.prod(sizes) >= CONV_PATH_PIXELS:
        outs = [n + conv_pads[i] + conv_pads[r + i] - reach[i] for i, n in enumerate(sizes)]
        return conv_forward(x, _flipped(w, group), b, strides, dil, conv_pads, group, outs)
    return col2im(x, w, b, strides, dil, pads, group, extra)


def _pixel_shuffle(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Sequence[int],
                   pads: Sequence[int], group: int, extra: Sequence[int]) -> np.ndarray:
    """ConvTranspose whose kernel is nowhere longer than its stride (a 1x1 shortcut's input
    gradient, a U-Net's 2x2 stride-2 upsampling): the kernel offsets land on disjoint output
    positions, so each offset is a pointwise ConvTranspose (one product) written at its
    phase of the output, zeros elsewhere: no adds. ``python
    benchmarks/bench_interp_kernels.py``, phases / col2im: 0.56 for 32 -> 16 channels 1x1
    stride 2 at 16x16, 0.63 for 2x2 stride 2."""
    r, kernel, sizes = x.ndim - 2, w.shape[2:], x.shape[2:]
    full = [s * (n - 1) + k + e for s, n, k, e in zip(strides, sizes, kernel, extra)]
    out = np.zeros((x.shape[0], w.shape[1] * group, *full), x.dtype)
    for off in np.ndindex(*kernel):
        tap = w[(slice(None), slice(None)) + tuple(slice(o, o + 1) for o in off)]
        if group == 1:  # [O, C] @ [N, C, pixels]: straight into [N, O, pixels]
            part = np.matmul(tap.reshape(tap.shape[:2]).T, x.reshape(x.shape[0], x.shape[1], -1))
            part = part.reshape((x.shape[0], -1, *sizes))
        else:
            part = col2im(x, tap, None, (1,) * r, (1,) * r, (0,) * (2 * r), group, (0,) * r)
        out[(slice(None), slice(None)) + tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n
                                               in zip(off, strides, sizes))] = part
    y = out[(slice(None), slice(None)) + tuple(slice(pads[i], full[i] - pads[r + i])
                                               for i in range(r))]
    if b is not None:
        y = y + b.reshape((-1,) + (1,) * r)
    return y


def col2im(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Sequence[int],
           dil: Sequence[int], pads: Sequence[int], group: int,
           extra: Sequence[int]) -> np.ndarray:
    """ConvTranspose as col2im: cols [N*in, K*C_out] = x @ w per group, then one strided add
    per kernel offset (no loop over pixels or batch items), then the pads cropped; channels stay
    last while adding, so every add runs over contiguous rows."""
    r, kernel, sizes = x.ndim - 2, w.shape[2:], x.shape[2:]
    full = [s * (n - 1) + d * (k - 1) + 1 + e
            for s, n, d, k, e in zip(strides, sizes, dil, kernel, extra)]
    x_last = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])  # [N*in, C_in]
    w_last = np.moveaxis(w, 1, -1)  # [C_in, K..., C_out/group]
    c_g, c_in = w.shape[1], x.shape[1] // group
    out = np.zeros((x.shape[0], *full, c_g * group), x.dtype)  # channels last
    for g in range(group):
        wg, xg = w_last[g * c_in:(g + 1) * c_in], x_last[:, g * c_in:(g + 1) * c_in]
        cols = (xg @ wg.reshape(len(wg), -1)).reshape((x.shape[0], *sizes, *kernel, c_g))
        for off in np.ndindex(*kernel):
            dst = (slice(None),) + offset_slices(off, strides, dil, sizes)
            out[dst + (slice(g * c_g, (g + 1) * c_g),)] += cols[(slice(None),) * (1 + r) + off]
    y = out[(slice(None),) + tuple(slice(pads[i], full[i] - pads[r + i]) for i in range(r))]
    if b is not None:
        y = y + b
    return np.moveaxis(y, -1, 1)


def _flipped(w: np.ndarray, group: int) -> np.ndarray:
    """ConvTranspose's weight [C, O/G, K...] as the weight [O, C/G, K...] of the conv it
    equals at stride 1: in and out channels swapped per group, every kernel axis flipped."""
    c, o_g, kernel = w.shape[0], w.shape[1], w.shape[2:]
    wg = w.reshape(group, c // group, o_g, *kernel).swapaxes(1, 2)
    flip = wg[(Ellipsis,) + (slice(None, None, -1),) * len(kernel)]
    return np.ascontiguousarray(flip).reshape(group * o_g, c // group, *kernel)
