"""ONNX Resize (nearest, linear, cubic interpolation of the trailing or any axes), with every
size, scale and region known when the graph is built.

Resize is linear in its input along each axis (:mod:`.resize_weights` gives the matrix), so
the op decomposes into a transpose, a matmul by a constant matrix and a transpose back per
resized axis (plus a constant where tf_crop_and_resize extrapolates); autodiff differentiates
that decomposition, so the gradient is the transposed matrices. The kernel applies the same
matrices in float64; export lowers to ONNX Resize where onnxruntime has it (float32)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import REQUIRED, OpDef, register
from ..core.types import TensorType, shape_str
from .common import need_float
from .resize_weights import axis_weights
from .shape import transpose

_ATTRS = {"axes": REQUIRED, "scales": REQUIRED, "sizes": REQUIRED, "rois": None,
          "from_sizes": False, "mode": "nearest",
          "coordinate_transformation_mode": "half_pixel", "cubic_coeff_a": -0.75,
          "exclude_outside": False, "extrapolation_value": 0.0,
          "nearest_mode": "round_prefer_floor", "antialias": False}


def _resize_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    need_float(x)
    if x.shape is None:
        raise ShapeError("resize needs an input of known rank")
    shape = list(x.shape)
    for axis, size in zip(attrs["axes"], attrs["sizes"]):
        if not isinstance(shape[axis], int):
            raise ShapeError(f"resize needs static sizes on the resized axes, got "
                             f"{shape_str(x.shape)} (axis {axis})")
        shape[axis] = int(size)
    return [TensorType(x.dtype, tuple(shape))]


def _plan(shape: tuple, attrs: dict) -> list[tuple[int, np.ndarray, np.ndarray | None]]:
    """(axis, W [out, in], extrapolated mask) per resized axis."""
    rois = attrs["rois"] or [None] * len(attrs["axes"])
    return [(axis, *axis_weights(int(shape[axis]), int(size), float(scale), roi, attrs))
            for axis, size, scale, roi in zip(attrs["axes"], attrs["sizes"], attrs["scales"],
                                              rois)]


def _resize_kernel(x: np.ndarray, **attrs: Any) -> np.ndarray:
    y = x.astype(np.float64)
    for axis, w, outside in _plan(x.shape, attrs):
        y = np.moveaxis(np.tensordot(w, y, axes=(1, axis)), 0, axis)
        if outside is not None and outside.any():
            index = (slice(None),) * axis + (outside,)
            y[index] = attrs["extrapolation_value"]
    return y.astype(x.dtype)


def _resize_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    (x,) = ins
    dt = x.dtype.np
    for axis, w, outside in _plan(x.shape, attrs):
        last = x.type.rank - 1
        perm = list(range(x.type.rank))
        perm[axis], perm[last] = last, axis  # a swap is its own inverse
        t = x if axis == last else transpose(x, perm)
        t = t @ b.const(np.ascontiguousarray(w.T).astype(dt))
        x = t if axis == last else transpose(t, perm)
        if outside is not None and outside.any():
            fill = (outside * attrs["extrapolation_value"]).astype(dt)
            x = x + b.const(fill.reshape((-1,) + (1,) * (last - axis)))
    return [x]


def _min_opset(attrs: dict) -> int:
    if attrs["coordinate_transformation_mode"] == "half_pixel_symmetric":
        return 19
    return 18 if attrs["antialias"] else 13


def _resize_lower(ctx, node) -> None:
    """ONNX Resize for float32 (onnxruntime's kernel; scales or sizes as the model gave
    them, over every axis); else the decomposition."""
    a, x = node.attrs, node.inputs[0]
    if x.type.dtype.np != np.float32 or ctx.opset < _min_opset(a):
        ctx.emit_decomposition(node)
        return
    rank = x.type.rank
    scales, sizes = [1.0] * rank, list(x.type.shape)
    for axis, scale, size in zip(a["axes"], a["scales"], a["sizes"]):
        scales[axis], sizes[axis] = float(scale), int(size)
    roi = ""
    if a["coordinate_transformation_mode"] == "tf_crop_and_resize":
        lo, hi = [0.0] * rank, [1.0] * rank
        for axis, pair in zip(a["axes"], a["rois"] or []):
            lo[axis], hi[axis] = pair
        roi = ctx.const(np.asarray(lo + hi, np.float32))
    if a["from_sizes"]:
        ins = [x, roi, "", ctx.const(np.asarray(sizes, np.int64))]
    else:
        ins = [x, roi, ctx.const(np.asarray(scales, np.float32))]
    ctx.emit("Resize", ins, node.outputs, mode=a["mode"],
             coordinate_transformation_mode=a["coordinate_transformation_mode"],
             cubic_coeff_a=a["cubic_coeff_a"], exclude_outside=int(a["exclude_outside"]),
             extrapolation_value=a["extrapolation_value"], nearest_mode=a["nearest_mode"],
             antialias=int(a["antialias"]) if ctx.opset >= 18 else None)


register(OpDef("resize", _resize_infer, (1, 1), kernel=_resize_kernel, lower=_resize_lower,
               decompose=_resize_decompose, attrs=dict(_ATTRS), traits={"composite"},
               doc="ONNX Resize with static sizes: one interpolation matrix per axis."))


def resize(x: Tensor, sizes: dict[int, int] | None = None,
           scales: dict[int, float] | None = None, mode: str = "nearest",
           coordinate_transformation_mode: str = "half_pixel", **options: Any) -> Tensor:
    """Resizes the axes named in ``sizes`` (axis -> new length) or ``scales`` (axis ->
    factor; length floor(factor * old)) by ``mode`` interpolation; ``options`` are ONNX
    Resize's other attributes (cubic_coeff_a, exclude_outside, nearest_mode, antialias, ...)."""
    if (sizes is None) == (scales is None):
        raise ShapeError("resize takes sizes or scales (one of them)")
    rank = x.type.rank
    if sizes is not None:
        axes = sorted(a % rank for a in sizes)
        out = [int(sizes.get(a, sizes.get(a - rank))) for a in axes]
        factors = [o / x.shape[a] for a, o in zip(axes, out)]
    else:
        axes = sorted(a % rank for a in scales)
        factors = [float(scales.get(a, scales.get(a - rank))) for a in axes]
        out = [int(f * x.shape[a]) for a, f in zip(axes, factors)]
    return x.b.apply1("resize", [x], axes=tuple(axes), scales=tuple(factors),
                      sizes=tuple(out), from_sizes=sizes is not None, mode=mode,
                      coordinate_transformation_mode=coordinate_transformation_mode,
                      **options)


def resize_op(x: Tensor, axes, scales, sizes, rois=None, **attrs: Any) -> Tensor:
    """The resize op with every axis's scale, size and region given (what the importer
    resolves from ONNX's inputs)."""
    return x.b.apply1("resize", [x], axes=tuple(int(a) for a in axes),
                      scales=tuple(float(s) for s in scales), sizes=tuple(int(s) for s in sizes),
                      rois=None if rois is None else tuple(tuple(r) for r in rois), **attrs)
