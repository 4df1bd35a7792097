"""The interpolation weights of ONNX Resize along one axis: a matrix W [out, in] and an
"extrapolated" mask, so that resizing along the axis is ``W @ x`` with the masked outputs set
to the extrapolation value. Resize is separable, so an n-d resize applies one per axis.

Written from the ONNX operator definition: each output index y maps to a source coordinate
x (``coordinate_transformation_mode``); nearest picks round(x) by ``nearest_mode``; linear
and cubic weigh the taps j around x by the kernel at (j - x), stretched by the scale when
antialiasing a downscale (then normalised); ``exclude_outside`` drops taps outside the input
and renormalises; taps past the edges read the edge value."""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import GraphError

COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                    "align_corners", "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def source_coords(mode: str, n_out: int, n_in: int, scale: float,
                  roi: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The source coordinate of each output index, and (tf_crop_and_resize) which ones fall
    outside the input."""
    y = np.arange(n_out, dtype=np.float64)
    width = scale * n_in  # the output width before rounding
    if mode == "align_corners":
        return (np.zeros(n_out) if width == 1 else y * (n_in - 1) / (width - 1)), None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "pytorch_half_pixel":
        return (np.full(n_out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5), None
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / width)
        return offset + (y + 0.5) / scale - 0.5, None
    if mode == "tf_crop_and_resize":
        lo, hi = roi if roi is not None else (0.0, 1.0)
        if width == 1:
            x = np.full(n_out, (hi - lo) * (n_in - 1) / 2)
        else:
            x = y * (hi - lo) * (n_in - 1) / (width - 1)
        x = x + lo * (n_in - 1)
        return x, (x < 0) | (x > n_in - 1)
    raise GraphError(f"resize: unknown coordinate_transformation_mode {mode!r}; expected one "
                     f"of {list(COORDINATE_MODES)}")


def _nearest(x: np.ndarray, mode: str) -> np.ndarray:
    frac = x - np.floor(x)
    if mode == "round_prefer_floor":
        return np.where(frac <= 0.5, np.floor(x), np.ceil(x))
    if mode == "round_prefer_ceil":
        return np.where(frac < 0.5, np.floor(x), np.ceil(x))
    if mode == "floor":
        return np.floor(x)
    if mode == "ceil":
        return np.ceil(x)
    raise GraphError(f"resize: unknown nearest_mode {mode!r}; expected one of "
                     f"{list(NEAREST_MODES)}")


def _cubic(d: np.ndarray, a: float) -> np.ndarray:
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def axis_weights(n_in: int, n_out: int, scale: float, roi: tuple[float, float] | None,
                 a: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """W [n_out, n_in] (rows of extrapolated outputs zero) and the extrapolated mask."""
    x, outside = source_coords(a["coordinate_transformation_mode"], n_out, n_in, scale, roi)
    w = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    if a["mode"] == "nearest":
        w[rows, np.clip(_nearest(x, a["nearest_mode"]), 0, n_in - 1).astype(np.intp)] = 1.0
    else:
        _add_taps(w, x, scale, a)
    if outside is not None:
        w[outside] = 0.0
    return w, outside


def _add_taps(w: np.ndarray, x: np.ndarray, scale: float, a: dict) -> None:
    n_out, n_in = w.shape
    support = 1.0 if a["mode"] == "linear" else 2.0
    if a["mode"] not in ("linear", "cubic"):
        raise GraphError(f"resize: unknown mode {a['mode']!r}; expected nearest, linear or "
                         "cubic")
    stretch = min(scale, 1.0) if a["antialias"] else 1.0
    half = math.ceil(support / stretch)
    taps = np.floor(x)[:, None] + np.arange(1 - half, half + 1)[None, :]  # [n_out, 2 * half]
    d = (taps - x[:, None]) * stretch
    k = np.clip(1 - np.abs(d), 0, 1) if a["mode"] == "linear" else \
        _cubic(d, a["cubic_coeff_a"])
    if a["antialias"]:
        k = k / k.sum(axis=1, keepdims=True)
    if a["exclude_outside"]:
        k = np.where((taps < 0) | (taps >= n_in), 0.0, k)
        total = k.sum(axis=1, keepdims=True)
        k = k / np.where(total == 0, 1.0, total)
    cols = np.clip(taps, 0, n_in - 1).astype(np.intp)
    np.add.at(w, (np.repeat(np.arange(n_out), cols.shape[1]), cols.ravel()), k.ravel())
