"""The fused elementwise op: a chain (a small DAG) of elementwise ops run as one node.

Its ``body`` attribute is a tuple of instructions ``(op, args, attrs)``; an arg ``i`` below the
node's input count names input ``i``, and ``n_inputs + k`` names the result of instruction
``k``. The last instruction's result is the output. A ``("constant", (), (("value", v),
("dtype", d)))`` instruction holds a scalar literal.

- shape rule: each instruction's op rule applied in turn;
- kernel: the chain evaluated op by op; the interpreter's compiled plan instead inlines it as
  calls of each op's in-place form (``OpDef.inplace``, ``out=``), writing each result into a
  buffer whose value dies there, so a chain of k ops allocates about one array, not k;
- ONNX: the body inlined as standard ops, each instruction by its own op's lowering, or, with
  ``to_onnx(graph, functions=True)``, a call of a model-local ONNX function holding the body;
- VJP: none of its own: the backprop pass differentiates the decomposition, i.e. the VJP is
  the backprop of the body.

The pass that builds these nodes is ``passes/fusion.py``.
"""
from __future__ import annotations

import hashlib
from functools import partial
from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import GraphError
from ..core.ir import Node, Value
from ..core.registry import REQUIRED, OpDef, get_op, register
from ..core.types import DType, TensorType, same_type
from .activations import softmax
from .elementwise import positive_zero, select_or_zero
from .losses import check_labels, one_hot, softmax_cross_entropy
from .rows import max_keepdims, sum_keepdims

Instr = tuple[str, tuple[int, ...], tuple[tuple[str, Any], ...]]


def literal(instr: Instr) -> np.ndarray:
    attrs = dict(instr[2])
    return np.asarray(attrs["value"], DType.of(attrs["dtype"]).np)


def body_types(body: Sequence[Instr], types: Sequence[TensorType]) -> list[TensorType]:
    """The types of the inputs and of every instruction's result, in order (the shape rule
    applied instruction by instruction; a body that cannot be fused is refused)."""
    vals: list[TensorType] = list(types)
    for op, args, at in body:
        if op == "constant":
            vals.append(TensorType(DType.of(literal((op, args, at)).dtype), ()))
            continue
        opdef = get_op(op)
        if opdef.inplace is None:
            raise GraphError(f"fused_elementwise: op {op!r} cannot be fused (it has no "
                             "in-place form)")
        if any(not 0 <= a < len(vals) for a in args):
            raise GraphError(f"fused_elementwise: {op} reads {args}, but only {len(vals)} "
                             "values are defined before it")
        vals.extend(opdef.infer([vals[a] for a in args], opdef.check_attrs(dict(at))))
    return vals


def _infer(types: list, attrs: dict) -> list[TensorType]:
    if not attrs["body"]:
        raise GraphError("fused_elementwise needs a non-empty body")
    return [body_types(attrs["body"], types)[-1]]


def _kernel(*ins: np.ndarray, body: tuple) -> np.ndarray:
    """The body evaluated instruction by instruction, each result a new array: the reference
    evaluation (trace, numerics). A compiled plan inlines the body in place instead
    (graphdl.engine.interpreter: the one in-place planner)."""
    vals: list[np.ndarray] = list(ins)
    for op, args, at in body:
        if op == "constant":
            vals.append(literal((op, args, at)))
        else:
            vals.append(np.asarray(get_op(op).inplace(*[vals[a] for a in args], **dict(at))))
    return vals[-1]


def _inline(w: Any, n: Node, args: list[str], target: str, donated: list[int]) -> bool:
    """In a compiled plan: the body as a chain of each op's in-place calls, an instruction
    writing into the buffer of an argument that dies there (an intermediate, or an input the
    plan donated) when that buffer has the result's shape and dtype. This is graphdl's one
    in-place planner of fused bodies."""
    body = n.attrs["body"]
    names = list(args)
    types = body_types(body, [v.type for v in n.inputs])
    owned = {names[k] for k in donated}
    last = {a: j for j, (_, a_s, _) in enumerate(body) for a in a_s}
    temps = []
    for j, (op, a_s, at) in enumerate(body):
        if op == "constant":
            lit = literal((op, a_s, at))
            names.append(w.bind("f", lit))
            continue
        opdef, t = get_op(op), types[len(args) + j]
        if _mask_for_mul(body, j, types[a_s[0]], t, len(args)):
            names.append(names[a_s[0]])  # mul takes the bool mask as is: no float copy
            owned.discard(names[a_s[0]])  # never a float result's buffer
            continue
        out = next((names[a] for a in a_s if names[a] in owned and last[a] == j
                    and same_type(types[a], t) and len(t.shape) > 0), None)
        fn = w.bind("u", partial(opdef.inplace, **dict(at)) if at else opdef.inplace)
        call = f"{fn}({', '.join(names[a] for a in a_s)}" + (f", out={out})" if out else ")")
        if op == "where" and out and positive_zero(w.ns.get(names[a_s[2]]), types[a_s[1]]):
            call = f"{w.bind('_select0', select_or_zero)}({names[a_s[0]]}, {names[a_s[1]]}, {out})"
        if t.shape is None or len(t.shape) == 0:
            call = f"_asarray({call})"
        name = f"f{w.step}_{j}"
        w.emit(n, f"{name} = {call}")
        w.n_inplace += out is not None
        if t.shape is not None and len(t.shape) > 0:
            owned.add(name)
        names.append(name)
        temps.append(name)
    w.emit(n, f"{target} = {names[-1]}")
    w.emit(n, "del " + ", ".join(temps))
    return True


def _mask_for_mul(body: Sequence, j: int, src: TensorType, t: TensorType, n_in: int) -> bool:
    """Whether instruction j casts a bool mask to a float that only multiplies (not the
    body's result): NumPy multiplies float32/64 by bool exactly as by its 0/1 float, so the
    cast's array need not exist (the backprop's ReLU mask ``g * cast(y > 0)``)."""
    op, _, _ = body[j]
    if op != "cast" or src.dtype != DType.bool or not t.dtype.is_float or j == len(body) - 1:
        return False
    readers = [k for k, (_, a_s, _) in enumerate(body) if n_in + j in a_s]
    return all(body[k][0] == "mul" for k in readers)


def _decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    vals: list[Tensor] = list(ins)
    for op, args, at in attrs["body"]:
        if op == "constant":
            vals.append(b.const(literal((op, args, at))))
        else:
            vals.append(b.apply1(op, [vals[a] for a in args], **dict(at)))
    return [vals[-1]]


FUNCTION_DOMAIN = "graphdl.fused"


def _emit_body(ctx: Any, body: Sequence[Instr], ins: list[Value], out: Value | str) -> None:
    """Each instruction through its op's own lowering; the last one writes ``out``."""
    vals: list[Value] = list(ins)
    for k, (op, args, at) in enumerate(body):
        if op == "constant":
            arr = literal((op, args, at))
            vals.append(Value(ctx.const(arr), TensorType(DType.of(arr.dtype), ())))
            continue
        opdef = get_op(op)
        attrs = opdef.check_attrs(dict(at))
        (t,) = opdef.infer([vals[a].type for a in args], attrs)
        last = k == len(body) - 1
        res = out if last and isinstance(out, Value) else Value(
            out if last else ctx.fresh(f"fused_{op}"), t)
        opdef.lower(ctx, Node(op, tuple(vals[a] for a in args), (res,), attrs, res.name))
        vals.append(res)


def _lower(ctx: Any, node: Node) -> None:
    """The body inlined as standard ops, or (``to_onnx(..., functions=True)``) one call of a
    model-local function holding it."""
    body = node.attrs["body"]
    if not ctx.functions:
        _emit_body(ctx, body, list(node.inputs), node.outputs[0])
        return
    name = f"fused_{hashlib.sha1(repr(body).encode()).hexdigest()[:12]}"
    if name not in ctx.function_protos:
        sub = type(ctx)(ctx.opset, set())
        formals = [Value(f"x{i}", v.type) for i, v in enumerate(node.inputs)]
        _emit_body(sub, body, formals, "y")
        ctx.function_protos[name] = onnx_helper().make_function(
            FUNCTION_DOMAIN, name, [v.name for v in formals], ["y"], sub.nodes,
            [onnx_helper().make_opsetid("", ctx.opset)])
    call = onnx_helper().make_node(name, [v.name for v in node.inputs],
                                   [node.outputs[0].name], name=ctx.fresh(name),
                                   domain=FUNCTION_DOMAIN)
    ctx.nodes.append(call)


def onnx_helper() -> Any:
    from onnx import helper

    return helper


register(OpDef("fused_elementwise", _infer, (1, 64), kernel=_kernel, lower=_lower,
               decompose=_decompose, fresh=True, inline=_inline,
               attrs={"body": REQUIRED}, traits={"composite", "reuses_inputs"},
               doc="A chain of elementwise ops evaluated in place as one node."))


def fused_elementwise(inputs: Sequence[Tensor], body: Sequence[Instr]) -> Tensor:
    """One node evaluating ``body`` over ``inputs`` (see the module docstring)."""
    return inputs[0].b.apply1("fused_elementwise", list(inputs), body=tuple(body))


def body_str(body: Sequence[Instr], n_inputs: int) -> str:
    """The body as one expression per line: ``t3 = add(x0, x1)``, for inspection."""
    def name(a: int) -> str:
        return f"x{a}" if a < n_inputs else f"t{a}"

    lines = []
    for k, (op, args, at) in enumerate(body):
        extra = [f"{key}={v!r}" for key, v in at if op != "constant" or key == "value"]
        lines.append(f"{name(n_inputs + k)} = {op}({', '.join([name(a) for a in args] + extra)})")
    return "\n".join(lines)


# -- softmax cross-entropy with its gradient -----------------------------------------------------


def _sce_grad_infer(types: list, attrs: dict) -> list[TensorType]:
    (loss,) = get_op("softmax_cross_entropy").infer(types, attrs)
    return [loss, TensorType(types[0].dtype, types[0].shape)]


def _sce_grad_kernel(z: np.ndarray, labels: np.ndarray, *, reduction: str) -> tuple:
    """One pass over the logits for both outputs: the loss and softmax(z) - onehot(labels)."""
    n, c = z.shape
    check_labels(labels, c)
    shifted = z - max_keepdims(z, 1)
    p = np.exp(shifted)
    total = sum_keepdims(p, 1)
    p /= total
    flat = np.arange(0, n * c, c) + labels  # (row, label) as flat indices
    per_row = np.log(total.reshape(n)) - shifted.reshape(-1).take(flat)
    loss = np.add.reduce(per_row) / (n if reduction == "mean" else 1)
    p.reshape(-1)[flat] -= 1
    return np.asarray(loss, z.dtype), p


def _sce_grad_decompose(b, ins: list, attrs: dict) -> list[Tensor]:
    z, labels = ins
    loss = softmax_cross_entropy(z, labels, attrs["reduction"])
    return [loss, softmax(z, 1) - one_hot(labels, z.shape[1], z.dtype)]


register(OpDef("softmax_cross_entropy_and_grad", _sce_grad_infer, (2, 2),
               slots={1: "labels"},
               kernel=_sce_grad_kernel, decompose=_sce_grad_decompose, fresh=True,
               attrs={"reduction": "mean"}, traits={"composite"},
               doc="softmax_cross_entropy(z, labels) and softmax(z) - onehot(labels), which "
                   "its gradient scales: what the fusion pass makes of a loss and its VJP."))
