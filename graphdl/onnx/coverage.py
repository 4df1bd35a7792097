"""Exporting an (op, dtype) that stock onnxruntime has no CPU kernel for.

The ONNX standard allows int16, uint16, uint32 and uint64 in many ops that onnxruntime (1.32)
implements only for int32/int64 and floats (``get_all_opkernel_def()``; checked by
tests/test_onnx_dtype_coverage.py). For each such (graphdl op, dtype) :data:`WIDEN` names the
dtype the export computes in instead, with Casts around the op: exact where every value of the
narrow type is a value of the wide one (int16/uint16 -> int32, uint32 -> int64 for order-based
ops), and for wrapping arithmetic (sums, products, powers) also where the wide type is only
congruent modulo 2**bits (uint64 -> int64: the low bits of a wrapped sum or product do not
depend on the width). ``None`` refuses the export with an error naming the op and the dtype
(no exact fallback: e.g. the order of uint64 values is not the order of their int64 bits).

Only the dtypes graphdl added for the ONNX backend cases are listed; the float64 gaps have
their own fallbacks in the ops' lowerings.
"""
from __future__ import annotations

from typing import Any

from ..core.errors import OnnxError
from ..core.ir import Node, Value
from ..core.registry import get_op
from ..core.types import DType, TensorType

I16, U16, U32, U64 = DType.int16, DType.uint16, DType.uint32, DType.uint64
I32, I64 = DType.int32, DType.int64
_SMALL = {I16: I32, U16: I32}
_WRAPPING = {I16: I32, U16: I32, U32: I64, U64: I64}
_ORDERED = {I16: I32, U16: I32, U32: I64, U64: None}
_NONE = {I16: None, U16: None, U32: None, U64: None}

#: graphdl op -> {dtype without an onnxruntime CPU kernel: the dtype to compute in, or None}
WIDEN: dict[str, dict[DType, DType | None]] = {
    "maximum": _SMALL, "minimum": _SMALL, "pad": _SMALL,
    "where": {I16: I32, U16: I32, U64: I64},  # selection: any injective cast round-trips
    "pow": _WRAPPING, "reduce_sum": _WRAPPING, "matmul": {I16: I32, U16: I32},
    "reduce_max": _ORDERED, "reduce_mean": _NONE, "max_pool": _NONE, "avg_pool": _NONE,
    "conv": _NONE, "conv_transpose": _NONE, "conv_weight_grad": _NONE,
    "trilu": {I16: I32, U16: I32, U32: I64, U64: I64},  # selection, as where
    "cumsum": _WRAPPING, "einsum": _WRAPPING, "argmax": _ORDERED,
}


def _node_dtype(n: Node) -> DType | None:
    """The dtype the node computes in: its first non-bool input's."""
    for v in n.inputs:
        if v is not None and v.type.dtype != DType.bool:
            return v.type.dtype
    return None


def lower_node(ctx: Any, n: Node) -> None:
    """Lowers ``n`` with its op's rule, through the wider dtype of :data:`WIDEN` where
    onnxruntime lacks the kernel; OnnxError where there is no exact fallback."""
    dt = _node_dtype(n)
    rule = WIDEN.get(n.op, {})
    if dt not in rule:
        get_op(n.op).lower(ctx, n)
        return
    via = rule[dt]
    if via is None:
        raise OnnxError(f"{n.where()}: cannot export {n.op} on {dt.name}: onnxruntime has no "
                        f"CPU kernel for it and no wider type computes it exactly; cast the "
                        f"inputs to another integer type first")
    ins = tuple(_cast(ctx, v, dt, via) for v in n.inputs)
    outs = tuple(Value(ctx.fresh(o.name), TensorType(via, o.type.shape)) if o.type.dtype == dt
                 else o for o in n.outputs)
    get_op(n.op).lower(ctx, Node(n.op, ins, outs, n.attrs, n.name, n.loc, n.grad_of))
    for o, wide in zip(n.outputs, outs):
        if wide is not o:
            ctx.emit("Cast", [wide], [o], to=dt.onnx)


def _cast(ctx: Any, v: Value | None, dt: DType, via: DType) -> Value | None:
    if v is None or v.type.dtype != dt:
        return v
    (name,) = ctx.emit("Cast", [v], 1, to=via.onnx)
    return Value(name, TensorType(via, v.type.shape, v.type.known))
