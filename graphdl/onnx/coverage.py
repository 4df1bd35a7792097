"""Exporting an (op, dtype) that stock onnxruntime has no CPU kernel for.

The ONNX standard allows int16, uint16, uint32 and uint64 in many ops that onnxruntime (1.32)
implements only for int32/int64 and floats (``get_all_opkernel_def()``; checked by
tests/test_onnx_dtype_coverage.py). Each such op's ``OpDef.widen`` names, per dtype, the dtype
the export computes in instead, with Casts around the op (graphdl/ops/common.py explains the
tables), or None, which refuses the export with an error naming the op and the dtype.

Only the dtypes graphdl added for the ONNX backend cases are listed; the float64 gaps have
their own fallbacks in the ops' lowerings.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..core.errors import OnnxError
from ..core.ir import Node, Value
from ..core.registry import all_ops, get_op
from ..core.types import DType, TensorType


def widened() -> dict[str, Mapping[DType, DType | None]]:
    """op name -> its ``widen`` table, for every op that has one."""
    return {name: op.widen for name, op in all_ops().items() if op.widen}


def _node_dtype(n: Node) -> DType | None:
    """The dtype the node computes in: its first non-bool input's."""
    for v in n.inputs:
        if v is not None and v.type.dtype != DType.bool:
            return v.type.dtype
    return None


def lower_node(ctx: Any, n: Node) -> None:
    """Lowers ``n`` with its op's rule, through the wider dtype of its ``OpDef.widen`` where
    onnxruntime lacks the kernel; OnnxError where there is no exact fallback."""
    dt = _node_dtype(n)
    rule = get_op(n.op).widen
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
