"""The NumPy interpreter: a graph compiled once into straight-line Python code.

A :class:`Plan` turns the graph into the source of one Python function, a line per node: the
op's kernel (attrs bound) called on local variables, then ``del`` of the values whose last use
that was, so buffers are released as early as the graph allows and no interpreter loop runs.
Where an input's buffer dies at a node and has the output's shape and dtype, the node calls the
op's in-place form (``OpDef.inplace``, ``out=`` that buffer) instead of allocating. An op with
an ``inline`` rule writes its own lines (a fused elementwise body as its chain of in-place calls,
Gemm as a matmul and in-place bias and activation). Composite ops without a kernel are expanded
to their decomposition first.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import numpy as np

from ..core.errors import GraphError
from ..core.feeds import check_feeds
from ..core.ir import Graph, Node, Value
from ..core.limits import DEFAULT_MAX_BYTES, check_bytes
from ..core.registry import get_op
from ..core.rewrite import expand_composites
from .buffers import Buffers, constant_outputs, last_uses, mask_casts
from .freed_memory import keep_freed_memory


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


class Step(NamedTuple):
    """One node of a plan: its kernel and attrs, the slots it reads and writes, the slots whose
    buffers die after it."""

    kernel: Callable | None
    attrs: dict
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    frees: tuple[int, ...]
    node: Node


class Plan:
    """A compiled graph: ``plan(feeds) -> {output name: array}``.

    ``steps`` lists a :class:`Step` per node for inspection; ``source`` is the generated
    function that runs them."""

    def __init__(self, graph: Graph, inplace: bool = True,
                 max_bytes: int = DEFAULT_MAX_BYTES):
        keep_freed_memory()
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
        self.steps: list[Step] = []
        for step, n in enumerate(g.nodes):
            ins = tuple(-1 if v is None else slot[v] for v in n.inputs)
            outs = tuple(slot[v] for v in n.outputs)
            self.steps.append(Step(get_op(n.op).kernel, dict(n.attrs), ins, outs,
                                   tuple(sorted(frees[step])), n))
        self._streams: dict[int | None, np.random.Generator] = {}
        code = PlanWriter(self, buffers)
        self.source, self._fn, self._lines = code.compile()
        self.n_inplace = code.n_inplace  # kernel calls that write into a dying input
        self._inits = [arr for _, arr in self.init_slots]
        self._input_names = [name for name, _ in self.input_slots]
        self._last_ok: list | None = None

    def stream(self, seed: int | None) -> np.random.Generator:
        """This plan's random stream for ``seed`` (one per seed, shared by the plan's random
        nodes of that seed; unseeded ones share one from fresh entropy): a seeded random op's
        draws depend only on this plan's earlier runs."""
        key = None if seed is None else int(seed)
        if key not in self._streams:
            self._streams[key] = np.random.default_rng(key)
        return self._streams[key]

    def call_attrs(self, n: Node) -> dict[str, Any]:
        """The keyword arguments of the node's kernel: its attrs, and for a random op this
        plan's stream for its seed."""
        attrs = dict(n.attrs)
        if "random" in get_op(n.op).traits:
            attrs["rng"] = self.stream(n.attrs.get("seed"))
        return attrs

    def run_nodes(self, feeds: Mapping[str, Any]
                  ) -> Iterator[tuple[Node, tuple[np.ndarray, ...]]]:
        """The plan's nodes run one at a time in order, each yielded with its outputs (no
        buffer reused or freed): the loop that trace and the numerics check look through."""
        arrays = check_feeds(self.graph.inputs, feeds)
        env: dict[int, Any] = {s: arrays[name] for name, s in self.input_slots}
        env.update(self.init_slots)
        for st in self.steps:
            res = st.kernel(*[None if s < 0 else env[s] for s in st.inputs],
                            **self.call_attrs(st.node))
            res = (res,) if len(st.outputs) == 1 else tuple(res)
            env.update(zip(st.outputs, res))
            yield st.node, res

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
        return self._lines.get(line, self.steps[-1].node)


class PlanWriter:
    """Writes a plan's function: one statement per node (a few for an inlined node).

    An op's ``inline`` rule (``OpDef.inline``) writes its node through this API: :meth:`bind`
    puts an object into the function's namespace, :meth:`emit` adds a line owned by a node,
    :meth:`constant_value` tells a constant node's array, and ``n_inplace`` counts the calls
    that write into a dying input's buffer."""

    def __init__(self, plan: "Plan", buffers: Buffers | None):
        self.plan, self.buffers = plan, buffers
        self.ns: dict[str, Any] = {"_asarray": np.asarray}
        self.lines: list[str] = []
        self.owner: dict[int, Node] = {}  # source line -> node
        self.n_inplace = 0
        self.step = 0  # the node being written

    def bind(self, hint: str, obj: Any) -> str:
        """``obj`` in the namespace under a name made from ``hint`` and the node's step
        (``k12`` for step 12's kernel), unique in the function."""
        name, k = f"{hint}{self.step}", 0
        while name in self.ns:
            k += 1
            name = f"{hint}{self.step}_{k}"
        self.ns[name] = obj
        return name

    def emit(self, node: Node, line: str) -> None:
        self.lines.append("    " + line)
        self.owner[len(self.lines)] = node

    def constant_value(self, v: Value | None) -> np.ndarray | None:
        """The array of a constant node's output, else None."""
        p = self.plan.graph.producers.get(v) if v is not None else None
        return p.attrs["value"] if p is not None and p.op == "constant" else None

    def compile(self) -> tuple[str, Callable, dict[int, Node]]:
        p = self.plan
        params = [f"v{s}" for _, s in p.input_slots] + [f"v{s}" for s, _ in p.init_slots]
        self.lines.append(f"def _plan({', '.join(params)}):")
        for step, st in enumerate(p.steps):
            self.step = step
            self._node(step, st)
            if st.frees:
                self.emit(st.node, "del " + ", ".join(f"v{s}" for s in st.frees))
        shared = constant_outputs(p.graph)
        self.ns["_copy"] = np.array
        outs = ", ".join(f"_copy(v{s})" if v in shared else f"v{s}"
                         for v, (_, s) in zip(p.graph.outputs, p.output_slots))
        self.lines.append(f"    return ({outs}{',' if len(p.output_slots) == 1 else ''})")
        src = "\n".join(self.lines) + "\n"
        exec(compile(src, f"<graphdl plan {p.graph.name}>", "exec"), self.ns)
        return src, self.ns["_plan"], self.owner

    def _node(self, step: int, st: "Step") -> None:
        n, op = st.node, get_op(st.node.op)
        args = ["None" if s < 0 else f"v{s}" for s in st.inputs]
        targets = ", ".join(f"v{s}" for s in st.outputs) + ("," if len(st.outputs) > 1 else "")
        donated = self.buffers.donatable(n, step) if self.buffers is not None else []
        if n in self.plan.mask_casts:  # its readers multiply by the bool mask itself
            self.emit(n, f"{targets} = {args[0]}")
            return
        if op.inline is not None and op.inline(self, n, args, targets, donated):
            return
        if donated and op.inplace is not None:
            self.n_inplace += 1
            fn = self.bind("k", partial(op.inplace, **n.attrs) if n.attrs else op.inplace)
            self.emit(n, f"{targets} = {fn}({', '.join(args)}, out={args[donated[0]]})")
            return
        first = op.kernel_first
        if first is not None and set(st.outputs[1:]) <= set(st.frees):
            fn = self.bind("k", partial(first, **n.attrs) if n.attrs else first)
            nones = ", None" * (len(st.outputs) - 1)  # the unread outputs, deleted right after
            self.emit(n, f"{targets} = {fn}({', '.join(args)}){nones}")
            return
        kernel = _size_guarded(n, self.plan.max_bytes)
        attrs = self.plan.call_attrs(n)
        fn = self.bind("k", partial(kernel, **attrs) if attrs else kernel)
        self.emit(n, f"{targets} = {fn}({', '.join(args)})")


def trace(graph: Graph, feeds: Mapping[str, Any]) -> dict[Node, tuple[np.ndarray, ...]]:
    """Every node's outputs (no freeing, nothing in place), for tests and debugging."""
    return dict(Plan(graph, inplace=False).run_nodes(feeds))
