"""Importer of ONNX Resize (opsets 10, 11, 13, 18, 19). roi, scales and sizes must be known at
import time, as must the input's dims on the resized axes. The importer resolves what the
opsets leave implicit: the axes (all, or ``axes`` from opset 18), the output sizes from the
scales (floor) or the scales from the sizes (``keep_aspect_ratio_policy``), and drops axes
that do not change. Opset 10 has no coordinate mode: it is "asymmetric" with floor."""
from __future__ import annotations

import numpy as np

from ...core.builder import Tensor
from ..importer import NodeCtx
from ...ops.resize import resize_op
from . import importer


def _given(c: NodeCtx, i: int) -> np.ndarray | None:
    """Input i as an array, None when absent or empty (the opset-11 way to leave it out)."""
    if not c.has(i):
        return None
    arr = c.static(i)
    if arr is None:
        raise c.fail(f"input {i} ({c.node.input[i]!r}) must be a constant; graphdl needs it at "
                     "import time")
    arr = np.asarray(arr).reshape(-1)
    return arr if arr.size else None


def _str(c: NodeCtx, name: str, default: str) -> str:
    v = c.attr(name, default)
    return v.decode() if isinstance(v, bytes) else str(v)


@importer("Resize")
def _resize(c: NodeCtx) -> Tensor:
    x = c.x(0)
    rank = x.type.rank
    if rank is None:
        raise c.fail("Resize needs an input of known rank")
    if c.opset < 11:
        roi, scales, sizes = None, _given(c, 1), None
    else:
        roi, scales, sizes = _given(c, 1), _given(c, 2), _given(c, 3)
    axes = [int(a) % rank for a in c.attr("axes", list(range(rank)))]
    dims = [x.shape[a] for a in axes]
    if not all(isinstance(d, int) for d in dims):
        raise c.fail(f"Resize needs static dims on the resized axes, got {x.type}")
    factors, out = _factors(c, dims, scales, sizes)
    rois = None if roi is None else [(float(roi[i]), float(roi[i + len(axes)]))
                                     for i in range(len(axes))]
    mode = "asymmetric" if c.opset < 11 else _str(c, "coordinate_transformation_mode",
                                                   "half_pixel")
    keep = [i for i, (d, o, f) in enumerate(zip(dims, out, factors))
            if not (np.isclose(f, 1.0) and d == o and (rois is None or rois[i] == (0.0, 1.0)))]
    if not keep:
        return c.b.apply1("identity", [x])
    return resize_op(
        x, [axes[i] for i in keep], [factors[i] for i in keep], [out[i] for i in keep],
        None if rois is None else [rois[i] for i in keep], from_sizes=sizes is not None,
        mode=_str(c, "mode", "nearest"), coordinate_transformation_mode=mode,
        cubic_coeff_a=float(c.attr("cubic_coeff_a", -0.75)),
        exclude_outside=bool(c.attr("exclude_outside", 0)),
        extrapolation_value=float(c.attr("extrapolation_value", 0.0)),
        nearest_mode="floor" if c.opset < 11 else _str(c, "nearest_mode",
                                                        "round_prefer_floor"),
        antialias=bool(c.attr("antialias", 0)))


def _factors(c: NodeCtx, dims: list[int], scales, sizes) -> tuple[list[float], list[int]]:
    """The scale and the output length of each axis, as the ONNX definition derives them."""
    if sizes is None:
        if scales is None or len(scales) != len(dims):
            raise c.fail(f"Resize needs {len(dims)} scales or sizes")
        return [float(s) for s in scales], [int(s * d) for s, d in zip(scales, dims)]
    if len(sizes) != len(dims):
        raise c.fail(f"Resize needs {len(dims)} sizes, got {len(sizes)}")
    factors = [int(s) / d for s, d in zip(sizes, dims)]
    policy = _str(c, "keep_aspect_ratio_policy", "stretch")
    if policy == "stretch":
        return factors, [int(s) for s in sizes]
    if policy not in ("not_larger", "not_smaller"):
        raise c.fail(f"keep_aspect_ratio_policy {policy!r} is unknown")
    f = min(factors) if policy == "not_larger" else max(factors)
    return [f] * len(dims), [int(f * d + 0.5) for d in dims]
