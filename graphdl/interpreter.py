"""The NumPy interpreter: a graph compiled once into a flat plan of kernel calls.

Values live in a list of slots; each step reads its input slots, calls the op's kernel and
writes its output slots, then frees the slots whose last use it was. Composite ops without a
kernel are expanded to their decomposition when the plan is made.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .errors import GraphError
from .feeds import check_feeds
from .ir import Graph, Node
from .registry import get_op
from .rewrite import expand_composites


class Plan:
    """A compiled graph: ``plan(feeds) -> {output name: array}``."""

    def __init__(self, graph: Graph):
        g, _ = expand_composites(graph, lambda op: op.kernel is None)
        self.graph = g
        slot = {v: i for i, v in enumerate(g.all_values())}
        self.n_slots = len(slot)
        self.input_slots = [(v.name, slot[v]) for v in g.inputs]
        self.init_slots = [(slot[v], arr) for v, arr in g.initializers.items()]
        self.output_slots = [(v.name, slot[v]) for v in g.outputs]
        last_use: dict[int, int] = {}
        for step, n in enumerate(g.nodes):
            for v in n.inputs:
                if v is not None:
                    last_use[slot[v]] = step
        keep = {slot[v] for v in g.outputs}
        frees: list[list[int]] = [[] for _ in g.nodes]
        for s, step in last_use.items():
            if s not in keep:
                frees[step].append(s)
        self.steps = []
        for step, n in enumerate(g.nodes):
            ins = tuple(-1 if v is None else slot[v] for v in n.inputs)
            outs = tuple(slot[v] for v in n.outputs)
            self.steps.append((get_op(n.op).kernel, dict(n.attrs), ins, outs, tuple(frees[step]), n))

    def __call__(self, feeds: Mapping[str, Any], check: bool = True) -> dict[str, np.ndarray]:
        arrays = check_feeds(self.graph.inputs, feeds) if check else feeds
        env: list[Any] = [None] * (self.n_slots + 1)  # env[-1] stays None: absent inputs
        for name, s in self.input_slots:
            env[s] = arrays[name]
        for s, arr in self.init_slots:
            env[s] = arr
        for kernel, attrs, ins, outs, frees, node in self.steps:
            try:
                res = kernel(*[env[i] for i in ins], **attrs)
            except GraphError:
                raise
            except (ValueError, IndexError, TypeError, ZeroDivisionError) as e:
                raise GraphError(f"{node.where()}: kernel failed: {e}") from e
            if len(outs) == 1:
                env[outs[0]] = res
            else:
                for s, r in zip(outs, res):
                    env[s] = r
            for s in frees:
                env[s] = None
        return {name: env[s] for name, s in self.output_slots}


def trace(graph: Graph, feeds: Mapping[str, Any]) -> dict[Node, tuple[np.ndarray, ...]]:
    """Every node's outputs (no freeing), for tests and debugging."""
    plan = Plan(graph)
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
