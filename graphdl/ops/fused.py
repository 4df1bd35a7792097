"""The fused elementwise op: a chain (a small DAG) of elementwise ops run as one node.

Its ``body`` attribute is a tuple of instructions ``(op, args, attrs)``; an arg ``i`` below the
node's input count names input ``i``, and ``n_inputs + k`` names the result of instruction
``k``. The last instruction's result is the output. A ``("constant", (), (("value", v),
("dtype", d)))`` instruction holds a scalar literal.

- shape rule: each instruction's op rule applied in turn;
- kernel: the chain evaluated with in-place NumPy ufuncs (``out=``), writing each result into a
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
from typing import Any, Callable, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import GraphError
from ..core.ir import Node, Value
from ..core.registry import REQUIRED, OpDef, get_op, register
from ..core.types import DType, TensorType
from .elementwise import np_dtype, where_kernel
from .losses import check_labels
from .rows import max_keepdims, sum_keepdims

Instr = tuple[str, tuple[int, ...], tuple[tuple[str, Any], ...]]


def _relu(x, out=None):
    return np.maximum(x, x.dtype.type(0), out=out)


def _sigmoid(x, out=None):
    """0.5 * (1 + tanh(x / 2)): stable for any x and evaluable in place."""
    y = np.multiply(x, x.dtype.type(0.5), out=out)
    np.tanh(y, out=y)
    np.add(y, y.dtype.type(1), out=y)
    return np.multiply(y, y.dtype.type(0.5), out=y)


def _cast(x, out=None, *, to):
    """cast: a new array of dtype ``to`` (into ``out`` when given)."""
    if out is None:
        return np.asarray(x).astype(np_dtype(to))
    np.copyto(out, x, casting="unsafe")
    return out


#: Ops with an in-place form ``fn(*args, out=buffer)``; fusion merges only these, and the
#: interpreter runs them in place where an input dies at the node.
UFUNCS: dict[str, Callable[..., np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "maximum": np.maximum, "minimum": np.minimum, "pow": np.power,
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs,
    "reciprocal": np.reciprocal, "tanh": np.tanh, "relu": _relu, "sigmoid": _sigmoid,
    "where": where_kernel, "cast": _cast,
    "equal": np.equal, "less": np.less, "greater": np.greater,
    "less_or_equal": np.less_equal, "greater_or_equal": np.greater_equal,
}
_BOOL_OUT = {"equal", "less", "greater", "less_or_equal", "greater_or_equal"}


def literal(instr: Instr) -> np.ndarray:
    attrs = dict(instr[2])
    return np.asarray(attrs["value"], DType.of(attrs["dtype"]).np)


def _infer(types: list, attrs: dict) -> list[TensorType]:
    body: Sequence[Instr] = attrs["body"]
    if not body:
        raise GraphError("fused_elementwise needs a non-empty body")
    vals: list[TensorType] = list(types)
    for op, args, at in body:
        if op == "constant":
            arr = literal((op, args, at))
            vals.append(TensorType(DType.of(arr.dtype), ()))
            continue
        if op not in UFUNCS:
            raise GraphError(f"fused_elementwise: op {op!r} cannot be fused")
        if any(not 0 <= a < len(vals) for a in args):
            raise GraphError(f"fused_elementwise: {op} reads {args}, but only {len(vals)} "
                             "values are defined before it")
        opdef = get_op(op)
        vals.extend(opdef.infer([vals[a] for a in args], opdef.check_attrs(dict(at))))
    return [vals[-1]]


def _program(body: tuple, shapes: tuple, dtypes: tuple, donate: tuple) -> tuple:
    """For concrete input shapes: each step as (fn, args, out_index or -1).

    A step writes into the buffer of an argument that dies at it (an intermediate, or an input
    the caller donated) when that buffer has the step's result shape and dtype."""
    n = len(shapes)
    shp, dts = list(shapes), list(dtypes)
    last = {}
    for k, (_, args, _) in enumerate(body):
        for a in args:
            last[a] = k
    owned = set(donate)
    steps = []
    for k, (op, args, at) in enumerate(body):
        if op == "constant":
            arr = literal((op, args, at))
            shp.append(())
            dts.append(arr.dtype)
            steps.append((None, arr, -1))
            continue
        out_shape = np.broadcast_shapes(*[shp[a] for a in args])
        out_dt = np.dtype(bool) if op in _BOOL_OUT else dts[args[-1]]
        if op == "cast":
            out_dt = np.dtype(DType.of(dict(at)["to"]).np)
        out = -1
        for a in args:
            if a in owned and last[a] == k and shp[a] == out_shape and dts[a] == out_dt \
                    and len(out_shape) > 0:
                out = a
                break
        shp.append(out_shape)
        dts.append(out_dt)
        if len(out_shape) > 0:
            owned.add(n + k)
        fn = partial(UFUNCS[op], **dict(at)) if at else UFUNCS[op]
        steps.append((fn, args, out))
    return tuple(steps)


class FusedKernel:
    """The kernel of one fused node: its programs cached by input shapes (a dict lookup per
    call; dtypes are fixed by the node's types). ``donate``: inputs it may overwrite."""

    def __init__(self, body: tuple, donate: tuple = ()):
        self.body, self.donate = body, tuple(donate)
        self.programs: dict[tuple, tuple] = {}

    def __call__(self, *ins: np.ndarray) -> np.ndarray:
        shapes = tuple([np.shape(a) for a in ins])
        prog = self.programs.get(shapes)
        if prog is None:
            dtypes = tuple(np.asarray(a).dtype for a in ins)
            prog = self.programs[shapes] = _program(self.body, shapes, dtypes, self.donate)
        vals = list(ins)
        for fn, args, out in prog:
            if fn is None:
                vals.append(args)
            elif out >= 0:
                vals.append(fn(*[vals[a] for a in args], out=vals[out]))
            else:
                vals.append(np.asarray(fn(*[vals[a] for a in args])))
        return vals[-1]


def _kernel(*ins: np.ndarray, body: tuple, donate: tuple = ()) -> np.ndarray:
    return FusedKernel(body, donate)(*ins)


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
               decompose=_decompose,
               attrs={"body": REQUIRED}, traits={"composite"},
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
    from .activations import softmax
    from .losses import one_hot, softmax_cross_entropy

    z, labels = ins
    loss = softmax_cross_entropy(z, labels, attrs["reduction"])
    return [loss, softmax(z, 1) - one_hot(labels, z.shape[1], z.dtype)]


register(OpDef("softmax_cross_entropy_and_grad", _sce_grad_infer, (2, 2),
               kernel=_sce_grad_kernel, decompose=_sce_grad_decompose,
               attrs={"reduction": "mean"}, traits={"composite"},
               doc="softmax_cross_entropy(z, labels) and softmax(z) - onehot(labels), which "
                   "its gradient scales: what the fusion pass makes of a loss and its VJP."))
