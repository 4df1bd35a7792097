"""The IR: typed values, nodes in topological order, and immutable graphs.

A :class:`Graph` is inputs, initializers (named parameters with values), a tuple of nodes in
topological order and outputs. Values are identified by object identity and carry a name that is
unique within a graph; graphs derived from another (a gradient graph) share its value objects.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator, Mapping

import numpy as np

from .types import TensorType


class Value:
    """A typed SSA value. ``name`` is unique within the graphs that hold it."""

    __slots__ = ("name", "type")

    def __init__(self, name: str, type: TensorType):
        self.name = name
        self.type = type

    def __repr__(self) -> str:
        return f"%{self.name}:{self.type}"


@dataclass(eq=False, slots=True)
class Node:
    """One application of a registered op.

    ``loc`` is the user's ``file:line`` that created it; ``grad_of`` names the forward node a
    gradient node was built for (None for forward nodes).
    """

    op: str
    inputs: tuple[Value | None, ...]
    outputs: tuple[Value, ...]
    attrs: Mapping[str, Any]
    name: str
    loc: str | None = None
    grad_of: str | None = None

    def where(self) -> str:
        """'node NAME (op OP) at FILE:LINE' for error messages."""
        at = f" at {self.loc}" if self.loc else ""
        return f"node {self.name} (op {self.op}){at}"


@dataclass(frozen=True, eq=False)
class Graph:
    """An immutable computation graph. Build one with :class:`graphdl.GraphBuilder`."""

    inputs: tuple[Value, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[Value, ...]
    initializers: Mapping[Value, np.ndarray] = field(default_factory=dict)
    name: str = "graph"
    #: free-form facts about where the graph came from (an imported model's producer, version,
    #: doc string, metadata_props, the sequence inputs' mapping); every rewrite keeps them
    metadata: Mapping[str, str] = field(default_factory=dict)

    def replace(self, **changes: Any) -> "Graph":
        """This graph with some fields changed (``nodes=...``, ``outputs=...``); the rest,
        metadata included, carried over. Every pass rebuilds graphs through this."""
        return dataclasses.replace(self, **changes)

    @cached_property
    def producers(self) -> dict[Value, Node]:
        """The node producing each value (inputs and initializers have none)."""
        return {v: n for n in self.nodes for v in n.outputs}

    @cached_property
    def uses(self) -> dict[Value, list[tuple[Node, int]]]:
        """Every (node, input slot) that reads each value, in node order."""
        out: dict[Value, list[tuple[Node, int]]] = {}
        for n in self.nodes:
            for slot, v in enumerate(n.inputs):
                if v is not None:
                    out.setdefault(v, []).append((n, slot))
        return out

    @cached_property
    def by_name(self) -> dict[str, Value]:
        """Every value of the graph by its name."""
        vals = list(self.inputs) + list(self.initializers)
        vals += [v for n in self.nodes for v in n.outputs]
        return {v.name: v for v in vals}

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Initializer values by name."""
        return {v.name: a for v, a in self.initializers.items()}

    def value(self, ref: "Value | str | Any") -> Value:
        """The value named by a Value, a Tensor handle or a name; GraphError if absent."""
        from .errors import GraphError

        v = getattr(ref, "value", ref)
        if isinstance(v, Value):
            if v not in self.producers and v not in self.initializers and v not in self.inputs:
                raise GraphError(f"value %{v.name} is not in graph {self.name!r}")
            return v
        if isinstance(v, str) and v in self.by_name:
            return self.by_name[v]
        raise GraphError(f"graph {self.name!r} has no value named {ref!r}; it has "
                         f"inputs {[x.name for x in self.inputs]}, "
                         f"outputs {[x.name for x in self.outputs]}")

    def all_values(self) -> Iterator[Value]:
        yield from self.inputs
        yield from self.initializers
        for n in self.nodes:
            yield from n.outputs

    def with_outputs(self, outputs: tuple[Value, ...]) -> "Graph":
        return self.replace(outputs=tuple(outputs))

    def param_count(self) -> int:
        return int(sum(a.size for a in self.initializers.values()))

    def __str__(self) -> str:
        from .printing import format_graph

        return format_graph(self)

    def to_dot(self) -> str:
        """Graphviz DOT text: gradient nodes coloured apart, clustered by forward node."""
        from .dot import to_dot

        return to_dot(self)

    def summary(self):  # -> graphdl.core.summary.Summary
        """The table of nodes, ops, output types, parameters and FLOPs (``print()`` it)."""
        from .summary import summarize

        return summarize(self)

    def to_networkx(self):  # -> networkx.DiGraph
        """A networkx DiGraph of nodes (op, grad_of, outputs with types, the first output's
        shape and dtype) and value edges."""
        import networkx as nx

        g = nx.DiGraph()
        for n in self.nodes:
            first = n.outputs[0].type if n.outputs else None
            g.add_node(n.name, op=n.op, grad_of=n.grad_of,
                       outputs=[f"{v.name}:{v.type}" for v in n.outputs],
                       shape=None if first is None else first.shape,
                       dtype=None if first is None else first.dtype.name)
        prod = self.producers
        for n in self.nodes:
            for v in n.inputs:
                if v is not None and v in prod:
                    g.add_edge(prod[v].name, n.name, value=v.name, type=str(v.type))
        return g
