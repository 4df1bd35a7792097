"""Importers of convolution and pooling: Conv, ConvTranspose, MaxPool, AveragePool,
GlobalAveragePool, GlobalMaxPool. ONNX's attribute defaults (strides and dilations of 1, zero
pads) are made explicit here, so graphdl's ops never guess them."""
from __future__ import annotations

from typing import Any

from ... import ops
from ...core.builder import Tensor
from ..importer import NodeCtx
from . import importer


def _spatial_rank(c: NodeCtx, x: Tensor) -> int:
    kernel = c.attr("kernel_shape", None)
    if kernel is not None:
        return len(kernel)
    if x.type.rank is None:
        raise c.fail(f"input {x.type} needs a known rank")
    return x.type.rank - 2


def _geometry(c: NodeCtx, r: int) -> dict[str, Any]:
    auto = c.attr("auto_pad", "NOTSET")
    pads = c.attr("pads", None)
    return {"strides": tuple(c.attr("strides", (1,) * r)),
            "dilations": tuple(c.attr("dilations", (1,) * r)),
            "pads": tuple(pads) if pads is not None and auto == "NOTSET" else (0,) * (2 * r),
            "auto_pad": auto}


@importer("Conv")
def _conv(c: NodeCtx) -> Tensor:
    x, w = c.x(0), c.x(1)
    ins = [x, w] + ([c.x(2)] if c.has(2) else [])
    kernel = c.attr("kernel_shape", None)
    return c.b.apply1("conv", ins, group=int(c.attr("group", 1)),
                      kernel_shape=None if kernel is None else tuple(kernel),
                      **_geometry(c, _spatial_rank(c, x)))


@importer("ConvTranspose")
def _conv_transpose(c: NodeCtx) -> Tensor:
    """Explicit pads, or pads derived from ``output_shape`` / SAME auto_pad as ONNX defines
    them. An output_shape larger than the input covers gets zeros (and the bias) in the rows
    the conv transpose does not reach, at the end."""
    x, w = c.x(0), c.x(1)
    r = _spatial_rank(c, x)
    geo = _geometry(c, r)
    auto = geo.pop("auto_pad")
    extra = tuple(c.attr("output_padding", (0,) * r))
    grow = (0,) * (2 * r)
    if c.attr("output_shape", None) is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        geo["pads"], grow = _transpose_pads(c, x, w, geo, auto, extra)
    elif auto != "NOTSET" and auto != "VALID":
        raise c.fail(f"unknown auto_pad {auto!r}")
    bias = c.x(2) if c.has(2) else None
    late = bias is not None and any(grow)
    ins = [x, w] + ([bias] if bias is not None and not late else [])
    y = c.b.apply1("conv_transpose", ins, group=int(c.attr("group", 1)),
                   output_padding=extra, **geo)
    if not any(grow):
        return y
    y = ops.pad(y, (0, 0, *grow[:r], 0, 0, *grow[r:]))
    if late:
        y = y + ops.unsqueeze(bias, tuple(range(1, r + 1)))
    return y


def _transpose_pads(c: NodeCtx, x: Tensor, w: Tensor, geo: dict, auto: str,
                    extra: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(pads, growth): ONNX's total padding ``stride * (in - 1) + output_padding +
    (kernel - 1) * dilation + 1 - output_shape`` split in halves (the odd one at the end for
    SAME_UPPER, else at the start); a negative total is rows added at the end, the growth
    [begins..., ends...] (as onnxruntime and onnx's reference implementation do)."""
    sizes, kernel = (x.shape or ())[2:], (w.shape or ())[2:]
    if not all(isinstance(d, int) for d in (*sizes, *kernel)) or len(sizes) != len(kernel):
        raise c.fail(f"output_shape / auto_pad need static spatial dims, got input {x.type} "
                     f"and weight {w.type}")
    r, strides, dil = len(sizes), geo["strides"], geo["dilations"]
    want = c.attr("output_shape", None)
    want = list(want)[-r:] if want is not None else [n * s for n, s in zip(sizes, strides)]
    begin, end, grow = [], [], []
    for i in range(r):
        total = strides[i] * (sizes[i] - 1) + extra[i] + dil[i] * (kernel[i] - 1) + 1 - want[i]
        small, big = max(total, 0) // 2, max(total, 0) - max(total, 0) // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
        grow.append(max(-total, 0))
    return tuple(begin + end), (0,) * r + tuple(grow)


def _pool_attrs(c: NodeCtx, x: Tensor) -> dict[str, Any]:
    r = _spatial_rank(c, x)
    return {"kernel_shape": tuple(c.attr("kernel_shape")),
            "ceil_mode": int(c.attr("ceil_mode", 0)),
            **_geometry(c, r)}


@importer("MaxPool")
def _max_pool(c: NodeCtx) -> list[Tensor]:
    x = c.x(0)
    return c.b.apply("max_pool", [x], storage_order=int(c.attr("storage_order", 0)),
                     **_pool_attrs(c, x))


@importer("AveragePool")
def _avg_pool(c: NodeCtx) -> Tensor:
    x = c.x(0)
    return c.b.apply1("avg_pool", [x], count_include_pad=int(c.attr("count_include_pad", 0)),
                      **_pool_attrs(c, x))


@importer("GlobalAveragePool")
def _global_avg_pool(c: NodeCtx) -> Tensor:
    return c.b.apply1("global_avg_pool", [c.x(0)])


@importer("GlobalMaxPool")
def _global_max_pool(c: NodeCtx) -> Tensor:
    return c.b.apply1("global_max_pool", [c.x(0)])
