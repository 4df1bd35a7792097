"""The NumPy interpreter: a graph compiled once into straight-line Python code.

A :class:`Plan` turns the graph into the source of one Python function, a line per node: the
op's kernel (attrs bound) called on local variables, then ``del`` of the values whose last use
that was, so buffers are released as early as the graph allows and no interpreter loop runs.
Where an input's buffer dies at a node and has the output's shape and dtype, the node calls the
op's in-place form (``out=`` that buffer; ``UFUNCS`` in ops/fused.py) instead of allocating.
A fused elementwise node is inlined as its chain of in-place ufunc calls. Composite ops without
a kernel are expanded to their decomposition first.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..core.errors import GraphError
from ..core.feeds import check_feeds
from ..core.ir import Graph, Node, Value
from ..core.limits import DEFAULT_MAX_BYTES, check_bytes
from ..ops.elementwise import select_or_zero
from ..ops.epilogue import ACTIVATIONS
from ..ops.fused import UFUNCS, literal
from .buffers import Buffers, constant_outputs, last_uses, mask_casts, same_buffer_type
from ..core.registry import get_op
from ..core.rewrite import expand_composites
from ..core.types import DType, TensorType

def _size_guarded(n: Node, max_bytes: int) -> Callable:
    """The node's kernel; for an op whose output size comes from run-time values (its
    ``out_shape`` rule) and is not static, wrapped to refuse an output over ``max_bytes``
    before allocating it."""
    op = get_op(n.op)
    shape = n.outputs[0].type.shape
    if op.out_shape is None or (shape is not None and all(isinstance(d, int) for d in shape)):
        return op.kernel
    itemsize = n.outputs[0].type.dtype.itemsize
    what = n.where()

    def guarded(*args: Any, **attrs: Any) -> Any:
        check_bytes(op.out_shape(*args, **attrs), itemsize, what, max_bytes)
        return op.kernel(*args, **attrs)

    return guarded


class Plan:
    """A compiled graph: ``plan(feeds) -> {output name: array}``.

    ``steps`` lists, per node, ``(kernel, attrs, input slots, output slots, freed slots, node)``
    for inspection; ``source`` is the generated function that runs them."""

    def __init__(self, graph: Graph, inplace: bool = True,
                 max_bytes: int = DEFAULT_MAX_BYTES):
        g, _ = expand_composites(graph, lambda op: op.kernel is None)
        self.graph, self.max_bytes = g, max_bytes
        slot = {v: i for i, v in enumerate(g.all_values())}
        self.n_slots = len(slot)
        self.input_slots = [(v.name, slot[v]) for v in g.inputs]
        self.init_slots = [(slot[v], arr) for v, arr in g.initializers.items()]
        self.output_slots = [(v.name, slot[v]) for v in g.outputs]
        last_use = last_uses(g, slot)
        keep = {slot[v] for v in g.outputs}
        frees: list[list[int]] = [[] for _ in g.nodes]
        for s, step in last_use.items():
            if s not in keep:
                frees[step].append(s)
        for step, n in enumerate(g.nodes):  # outputs nothing reads die where they are made
            frees[step] += [slot[v] for v in n.outputs if slot[v] not in last_use
                            and slot[v] not in keep]
        self.mask_casts = mask_casts(g)
        buffers = Buffers(g, slot, last_use, keep, self.mask_casts) if inplace else None
        self.steps = []
        for step, n in enumerate(g.nodes):
            ins = tuple(-1 if v is None else slot[v] for v in n.inputs)
            outs = tuple(slot[v] for v in n.outputs)
            self.steps.append((get_op(n.op).kernel, dict(n.attrs), ins, outs,
                               tuple(sorted(frees[step])), n))
        code = _CodeGen(self, buffers)
        self.source, self._fn, self._lines = code.compile()
        self.n_inplace = code.n_inplace  # kernel calls that write into a dying input
        self._inits = [arr for _, arr in self.init_slots]
        self._input_names = [name for name, _ in self.input_slots]
        self._last_ok: list | None = None

    def __call__(self, feeds: Mapping[str, Any], check: bool = True) -> dict[str, np.ndarray]:
        args = self._checked(feeds) if check else [feeds[name] for name, _ in self.input_slots]
        try:
            res = self._fn(*args, *self._inits)
        except GraphError:
            raise
        except (ValueError, IndexError, TypeError, ZeroDivisionError) as e:
            raise GraphError(f"{self._failed_node(e).where()}: kernel failed: {e}") from e
        return dict(zip([name for name, _ in self.output_slots], res))

    def _checked(self, feeds: Mapping[str, Any]) -> list:
        """The feeds in input order, validated; feeds of the dtypes and shapes last validated
        pass without the full check (the symbol bindings are then the same too)."""
        names = self._input_names
        if len(feeds) == len(names):
            try:
                args = [feeds[n] for n in names]
            except KeyError:
                args = None
            if args is not None and all(type(a) is np.ndarray for a in args):
                key = [(a.dtype, a.shape) for a in args]
                if key == self._last_ok:
                    return args
        arrays = check_feeds(self.graph.inputs, feeds)
        args = [arrays[n] for n in names]
        self._last_ok = [(a.dtype, a.shape) for a in args]
        return args

    def _failed_node(self, e: BaseException) -> Node:
        tb, line = e.__traceback__, 0
        while tb is not None:
            if tb.tb_frame.f_code is self._fn.__code__:
                line = tb.tb_lineno
            tb = tb.tb_next
        return self._lines.get(line, self.steps[-1][5])


class _CodeGen:
    """Writes the plan's function: one statement per node (a few for an inlined fusion)."""

    def __init__(self, plan: Plan, buffers: Buffers | None):
        self.plan, self.buffers = plan, buffers
        self.ns: dict[str, Any] = {"_asarray": np.asarray}
        self.lines: list[str] = []
        self.owner: dict[int, Node] = {}  # source line -> node
        self.n_inplace = 0

    def compile(self) -> tuple[str, Callable, dict[int, Node]]:
        p = self.plan
        params = [f"v{s}" for _, s in p.input_slots] + [f"v{s}" for s, _ in p.init_slots]
        self.lines.append(f"def _plan({', '.join(params)}):")
        for step, (kernel, attrs, ins, outs, frees, node) in enumerate(p.steps):
            self._node(step, node, ins, outs)
            if frees:
                self._emit(node, "del " + ", ".join(f"v{s}" for s in frees))
        shared = constant_outputs(p.graph)
        self.ns["_copy"] = np.array
        outs = ", ".join(f"_copy(v{s})" if v in shared else f"v{s}"
                         for v, (_, s) in zip(p.graph.outputs, p.output_slots))
        self.lines.append(f"    return ({outs}{',' if len(p.output_slots) == 1 else ''})")
        src = "\n".join(self.lines) + "\n"
        exec(compile(src, f"<graphdl plan {p.graph.name}>", "exec"), self.ns)
        return src, self.ns["_plan"], self.owner

    def _emit(self, node: Node, line: str) -> None:
        self.lines.append("    " + line)
        self.owner[len(self.lines)] = node

    def _node(self, step: int, n: Node, ins: tuple, outs: tuple) -> None:
        args = ["None" if s < 0 else f"v{s}" for s in ins]
        targets = ", ".join(f"v{s}" for s in outs) + ("," if len(outs) > 1 else "")
        donated = self.buffers.donatable(n, step) if self.buffers is not None else []
        if n.op == "fused_elementwise":
            self._fused(step, n, args, targets, donated)
            return
        if n.op == "constant":  # its array itself, bound once: no call per run
            self.ns[f"c{step}"] = n.attrs["value"]
            self._emit(n, f"{targets} = c{step}")
            return
        if n in self.plan.mask_casts:  # its readers multiply by the bool mask itself
            self._emit(n, f"{targets} = {args[0]}")
            return
        if donated and n.op == "where" and self._zero_const(n.inputs[2], n.inputs[1].type):
            self.n_inplace += 1
            self.ns["_select0"] = select_or_zero
            out = args[donated[0]]
            self._emit(n, f"{targets} = _select0({args[0]}, {args[1]}, {out})")
            return
        if donated and n.op in UFUNCS:
            self.n_inplace += 1
            self.ns[f"k{step}"] = partial(UFUNCS[n.op], **n.attrs) if n.attrs else UFUNCS[n.op]
            self._emit(n, f"{targets} = k{step}({', '.join(args)}, out={args[donated[0]]})")
            return
        if n.op == "gemm" and n.attrs["alpha"] == 1.0 and n.attrs["beta"] == 1.0:
            self._gemm(n, args, targets)
            return
        if _is_matrix_op(n):  # 2-D matmul / transpose: the NumPy call itself, no wrapper
            self.ns["_matmul"] = np.matmul
            call = f"{args[0]}.T" if n.op == "transpose" else f"_matmul({args[0]}, {args[1]})"
            self._emit(n, f"{targets} = {call}")
            return
        first = get_op(n.op).kernel_first
        if first is not None and set(outs[1:]) <= set(self.plan.steps[step][4]):
            self.ns[f"k{step}"] = partial(first, **n.attrs) if n.attrs else first
            nones = ", None" * (len(outs) - 1)  # the unread outputs, deleted right after
            self._emit(n, f"{targets} = k{step}({', '.join(args)}){nones}")
            return
        kernel = _size_guarded(n, self.plan.max_bytes)
        if n.op in _REDUCE_UFUNCS and n.outputs[0].type.rank and \
                (n.op == "reduce_sum" or _never_empty(n.inputs[0].type)):  # no wrapper
            axes = n.attrs["axes"]
            kernel = partial(_REDUCE_UFUNCS[n.op], axis=None if axes is None else tuple(axes),
                             keepdims=bool(n.attrs["keepdims"]),
                             dtype=n.inputs[0].type.dtype.np)  # numpy widens narrow ints
            self.ns[f"k{step}"] = kernel
        else:
            self.ns[f"k{step}"] = partial(kernel, **n.attrs) if n.attrs else kernel
        self._emit(n, f"{targets} = k{step}({', '.join(args)})")

    def _zero_const(self, v: Value, x: TensorType) -> bool:
        """Whether v is a +0.0 constant node's value and x a float32/64 of rank >= 1."""
        p = self.plan.graph.producers.get(v)
        return p is not None and p.op == "constant" and self._is_zero(p.attrs["value"], x)

    def _zero_literal(self, name: str, x: TensorType) -> bool:
        """Whether ``name`` is a +0.0 literal of a fused body and x a float32/64 of rank >= 1
        (so where(c, x, it) can be a bitwise select)."""
        return self._is_zero(self.ns.get(name), x)

    @staticmethod
    def _is_zero(lit: Any, x: TensorType) -> bool:
        return isinstance(lit, np.ndarray) and lit.ndim == 0 and lit == 0 \
            and not np.signbit(lit) and x.dtype.name in ("float32", "float64") \
            and x.shape is not None and len(x.shape) > 0

    def _gemm(self, n: Node, args: list[str], target: str) -> None:
        """Gemm inlined: one matmul (transposes as views), the bias added and the fused
        activation applied in place."""
        a = args[0] + (".T" if n.attrs["transA"] else "")
        b = args[1] + (".T" if n.attrs["transB"] else "")
        self.ns["_matmul"], self.ns["_add"] = np.matmul, np.add
        self._emit(n, f"{target} = _matmul({a}, {b})")
        if len(args) > 2 and args[2] != "None":
            self._emit(n, f"_add({target}, {args[2]}, out={target})")
        act = n.attrs.get("activation")
        if act is not None:
            self.ns[f"_{act}"] = ACTIVATIONS[act].kernel
            self._emit(n, f"_{act}({target})")

    def _fused(self, step: int, n: Node, args: list[str], target: str, donated: list) -> None:
        """The body inlined: each instruction an in-place ufunc call where a buffer dies."""
        body = n.attrs["body"]
        names = list(args)
        types: list[TensorType] = [v.type for v in n.inputs]
        owned = {names[k] for k in donated}
        last = {a: j for j, (_, a_s, _) in enumerate(body) for a in a_s}
        temps = []
        for j, (op, a_s, at) in enumerate(body):
            name = f"f{step}_{j}"
            if op == "constant":
                self.ns[name] = literal((op, a_s, at))
                types.append(TensorType(DType.of(self.ns[name].dtype), ()))
                names.append(name)
                continue
            opdef = get_op(op)
            (t,) = opdef.infer([types[a] for a in a_s], opdef.check_attrs(dict(at)))
            if _mask_for_mul(body, j, types[a_s[0]], t, len(args)):
                names.append(names[a_s[0]])  # mul takes the bool mask as is: no float copy
                types.append(t)
                owned.discard(names[a_s[0]])  # never a float result's buffer
                continue
            out = next((names[a] for a in a_s if names[a] in owned and last[a] == j
                        and same_buffer_type(types[a], t)), None)
            fn = f"u_{op}" if not at else f"u{step}_{j}"
            self.ns[fn] = partial(UFUNCS[op], **dict(at)) if at else UFUNCS[op]
            call = f"{fn}({', '.join(names[a] for a in a_s)}"
            call += f", out={out})" if out else ")"
            if op == "where" and out and self._zero_literal(names[a_s[2]], types[a_s[1]]):
                self.ns["_select0"] = select_or_zero
                call = f"_select0({names[a_s[0]]}, {names[a_s[1]]}, {out})"
            if t.shape is None or len(t.shape) == 0:
                call = f"_asarray({call})"
            self._emit(n, f"{name} = {call}")
            self.n_inplace += out is not None
            if t.shape is not None and len(t.shape) > 0:
                owned.add(name)
            names.append(name)
            types.append(t)
            temps.append(name)
        self._emit(n, f"{target} = {names[-1]}")
        self._emit(n, "del " + ", ".join(temps))


def _mask_for_mul(body: Sequence, j: int, src: TensorType, t: TensorType, n_in: int) -> bool:
    """Whether instruction j casts a bool mask to a float that only multiplies (not the
    body's result): NumPy multiplies float32/64 by bool exactly as by its 0/1 float, so the
    cast's array need not exist (the backprop's ReLU mask ``g * cast(y > 0)``)."""
    op, _, _ = body[j]
    if op != "cast" or src.dtype != DType.bool or not t.dtype.is_float or j == len(body) - 1:
        return False
    readers = [k for k, (_, a_s, _) in enumerate(body) if n_in + j in a_s]
    return all(body[k][0] == "mul" for k in readers)


_REDUCE_UFUNCS = {"reduce_sum": np.add.reduce, "reduce_max": np.maximum.reduce}


def _never_empty(t: TensorType) -> bool:
    """Whether t has no dim that is 0 or unknown (np.maximum.reduce has no value for an empty
    set; reduce_max's own kernel gives ONNX's -inf there). A symbolic dim counts as nonzero."""
    return t.shape is not None and all(d is not None and d != 0 for d in t.shape)


def _is_matrix_op(n: Node) -> bool:
    """A matmul of two 2-D operands, or a transpose of a 2-D one that swaps its axes."""
    ranks = [v.type.rank for v in n.inputs if v is not None]
    if n.op == "matmul":
        return ranks == [2, 2]
    return n.op == "transpose" and ranks == [2] and n.attrs["perm"] in (None, (1, 0), [1, 0])


def trace(graph: Graph, feeds: Mapping[str, Any]) -> dict[Node, tuple[np.ndarray, ...]]:
    """Every node's outputs (no freeing, nothing in place), for tests and debugging."""
    plan = Plan(graph, inplace=False)
    arrays = check_feeds(plan.graph.inputs, feeds)
    env: dict = {v: arrays[v.name] for v in plan.graph.inputs}
    env.update(plan.graph.initializers)
    out = {}
    for n in plan.graph.nodes:
        res = get_op(n.op).kernel(*[None if v is None else env[v] for v in n.inputs], **n.attrs)
        res = (res,) if len(n.outputs) == 1 else tuple(res)
        env.update(zip(n.outputs, res))
        out[n] = res
    return out
