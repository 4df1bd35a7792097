"""Window geometry shared by convolution and pooling: ONNX's strides / dilations / pads
defaults, ``auto_pad``, the output-size rule, and the strided window view the kernels use.

Every spatial axis obeys ``O = floor((N + pads - dilation * (F - 1) - 1) / s) + 1`` (ceil with
pooling's ``ceil_mode``): the textbook ``O = (N - F + 2Q) / s + 1`` for dilation 1 and pads Q.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..core.builder import Tensor
from ..core.errors import GradError, ShapeError
from ..core.types import Dim, shape_str

AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


# -- geometry ----------------------------------------------------------------------------------


def spatial(attrs: dict, r: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(strides, dilations, pads) with ONNX defaults (1s, 1s, 0s) for ``r`` spatial axes."""
    strides = tuple(attrs.get("strides") or (1,) * r)
    dilations = tuple(attrs.get("dilations") or (1,) * r)
    pads = tuple(attrs.get("pads") or (0,) * (2 * r))
    if len(strides) != r or len(dilations) != r or len(pads) != 2 * r:
        raise ShapeError(f"{r} spatial axes need {r} strides, {r} dilations and {2 * r} pads; "
                         f"got strides {list(strides)}, dilations {list(dilations)}, pads "
                         f"{list(pads)}")
    if min(strides + dilations) < 1 or min(pads, default=0) < 0:
        raise ShapeError(f"strides and dilations must be >= 1 and pads >= 0; got strides "
                         f"{list(strides)}, dilations {list(dilations)}, pads {list(pads)}")
    return strides, dilations, pads


def resolve_pads(op: str, sizes: Sequence[Dim], kernel: Sequence[int], attrs: dict
                 ) -> tuple[int, ...] | None:
    """Explicit pads [begins..., ends...]; for SAME_* auto_pad they depend on the input sizes
    (None while one of them is symbolic)."""
    r = len(kernel)
    strides, dil, pads = spatial(attrs, r)
    auto = attrs.get("auto_pad", "NOTSET")
    if auto not in AUTO_PADS:
        raise ShapeError(f"{op}: auto_pad must be one of {list(AUTO_PADS)}, got {auto!r}")
    if auto == "NOTSET":
        return pads
    if auto == "VALID":
        return (0,) * (2 * r)
    if not all(isinstance(n, int) for n in sizes):
        return None
    begin, end = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dil):
        total = max(0, (-(-n // s) - 1) * s + d * (k - 1) + 1 - n)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return tuple(begin + end)


def out_dims(op: str, sizes: Sequence[Dim], kernel: Sequence[int], attrs: dict,
             ceil_mode: bool = False) -> tuple[Dim, ...]:
    """The output size of every spatial axis; ShapeError when one is not positive.

    ``floor((N + pads - dilation * (F - 1) - 1) / s) + 1``, or ceil with ``ceil_mode``, where
    (as in ONNX Runtime and PyTorch) a last window starting in the end padding is dropped.
    ONNX's own shape inference tests against begin + end padding there, so with asymmetric pads
    and ceil_mode onnx.checker's full_check can disagree with what ONNX Runtime computes."""
    strides, dil, _ = spatial(attrs, len(kernel))
    pads = resolve_pads(op, sizes, kernel, attrs)
    r = len(kernel)
    out: list[Dim] = []
    for i, (n, k, s, d) in enumerate(zip(sizes, kernel, strides, dil)):
        if not isinstance(n, int) or pads is None:
            out.append(None)
            continue
        span = n + pads[i] + pads[r + i] - d * (k - 1) - 1
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and span >= 0 and (o - 1) * s >= n + pads[i]:
            o -= 1
        if o < 1 or span < 0:
            raise ShapeError(
                f"{op}: spatial axis {i} has no output (size {o if span >= 0 else 0}): input "
                f"size {n}, kernel {k}, stride {s}, padding {pads[i]}+{pads[r + i]}, dilation "
                f"{d}; O = floor((N + pads - dilation*(F-1) - 1) / stride) + 1 must be >= 1")
        out.append(o)
    return tuple(out)


def fit_transpose(sizes: Sequence[int], outs: Sequence[int], kernel: Sequence[int],
                  strides: Sequence[int], dil: Sequence[int], pads: Sequence[int]
                  ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(pads, output_padding) with which ``conv_transpose`` maps an ``outs``-sized map back to
    exactly ``sizes``: the end pads grow where windows ran past the input (pooling's
    ceil_mode); output_padding covers the rows that no window reached (floor's remainder)."""
    r = len(kernel)
    ends, extra = list(pads[r:]), []
    for i in range(r):
        covered = strides[i] * (outs[i] - 1) + dil[i] * (kernel[i] - 1) + 1
        target = sizes[i] + pads[i] + pads[r + i]
        extra.append(max(0, target - covered))
        ends[i] += max(0, covered - target)
    return tuple(pads[:r]) + tuple(ends), tuple(extra)


def static_sizes(x: Tensor, op: str) -> tuple[int, ...]:
    """x's spatial sizes, which a gradient needs to know."""
    sizes = (x.shape or (None, None))[2:]
    if x.shape is None or not all(isinstance(n, int) for n in sizes):
        raise GradError(f"the gradient of {op} needs static spatial dims, got input "
                        f"{shape_str(x.shape)}")
    return tuple(sizes)


def padded(x: np.ndarray, pads: Sequence[int], fill: float = 0.0,
           extra: Sequence[int] | None = None) -> np.ndarray:
    """x [N, C, S...] padded on the spatial axes (``extra`` more at the ends, for ceil_mode);
    one allocation and one copy (``np.pad`` costs several times more on small maps)."""
    r = x.ndim - 2
    extra = extra or (0,) * r
    if not any(pads) and not any(extra):
        return x
    sizes = [n + pads[i] + pads[r + i] + extra[i] for i, n in enumerate(x.shape[2:])]
    out = np.full(x.shape[:2] + tuple(sizes), fill, x.dtype)
    out[(slice(None),) * 2 + tuple(slice(pads[i], pads[i] + n)
                                   for i, n in enumerate(x.shape[2:]))] = x
    return out


def offset_slices(offset: Sequence[int], strides: Sequence[int], dil: Sequence[int],
                  outs: Sequence[int]) -> tuple[slice, ...]:
    """The spatial slice of a padded input that kernel position ``offset`` sees in every
    window: start o * d, then every s-th element, ``outs`` of them."""
    return tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                 for o, d, s, n in zip(offset, dil, strides, outs))


def im2col(x: np.ndarray, kernel: Sequence[int], strides: Sequence[int], dil: Sequence[int],
           pads: Sequence[int], outs: Sequence[int]) -> np.ndarray:
    """The columns [C, K..., N, out...] of x [N, C, S...]: one strided block copy per kernel
    offset (no loop over pixels or batch items), laid out so that a conv is one matrix product
    w [O, C*K] @ cols [C*K, N*out]."""
    xp = padded(x, pads)
    n, c = x.shape[:2]
    cols = np.empty((c, *kernel, n, *outs), x.dtype)
    for off in np.ndindex(*kernel):
        block = xp[(slice(None), slice(None)) + offset_slices(off, strides, dil, outs)]
        cols[(slice(None),) + off] = block.swapaxes(0, 1)
    return cols


def windows(x: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
            dil: Sequence[int], pads: Sequence[int], fill: float = 0.0,
            extra: Sequence[int] | None = None) -> np.ndarray:
    """A strided view [N, C, out..., kernel...] of every window of x padded with ``fill``
    (plus ``extra`` at the ends, for ceil_mode); no copy beyond the padding."""
    r = len(kernel)
    x = padded(x, pads, fill, extra)
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dil)]
    v = sliding_window_view(x, span, axis=tuple(range(2, 2 + r)))
    return v[(slice(None),) * 2 + tuple(slice(None, None, s) for s in strides)
             + tuple(slice(None, None, d) for d in dil)]


def as_tuple(v: int | Sequence[int], r: int, what: str) -> tuple[int, ...]:
    """One int for every axis, or ``r`` of them."""
    if isinstance(v, (int, np.integer)):
        return (int(v),) * r
    v = tuple(int(a) for a in v)
    if len(v) == r:
        return v
    raise ShapeError(f"{what} needs {r} values, got {list(v)}")


def as_pads(pads: int | Sequence[int], r: int) -> tuple[int, ...]:
    """ONNX pads [begins..., ends...] from one int (every side), one per axis (both sides) or
    the 2r ONNX values."""
    if isinstance(pads, (int, np.integer)) or len(pads) == r:
        return as_tuple(pads, r, "pads") * 2
    return as_tuple(pads, 2 * r, "pads")
