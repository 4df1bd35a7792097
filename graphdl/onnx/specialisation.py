"""Run-time values for inputs that graphdl needs at import time.

graphdl graphs are static: a ReduceSum's ``axes``, a Split's sizes, a Pad's ``axes``, Dropout's
``ratio`` and ``training_mode``, an LSTM's ``sequence_lens`` must be known when the ONNX model
is imported. ONNX lets a model take them as graph inputs. ``from_onnx`` then keeps each such
input as a *specialisation input* and returns a :class:`SpecialisableGraph`: a template with
the model's inputs and outputs but no nodes. The engines (``graphdl.run`` with either backend,
``graphdl run``, the trainer's NumPy runner) specialise it on the values fed: they bind those
inputs as constants, import the model again and run the result, keeping the last
:data:`CACHE_SIZE` specialised graphs (and so their interpreter plans and onnxruntime sessions)
keyed by the bound values. A template cannot be exported or differentiated until specialised
(:func:`specialise`).

Which inputs are specialisation inputs is learned as the import meets them: the first import
stops at the first importer that needs one; importing again with it bound may meet the next.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np
import onnx

from ..core.errors import FeedError, GraphError, OnnxError
from ..core.feeds import check_feeds
from ..core.ir import Graph, Value

#: how many specialised graphs (each with its plan and sessions) a template keeps
CACHE_SIZE = 8


class StaticInputError(OnnxError):
    """An importer needed, at import time, the value of graph inputs ``names``."""

    def __init__(self, message: str, names: tuple[str, ...]):
        super().__init__(message)
        self.names = names


class NotSpecialisedError(GraphError):
    """A template graph used where a specialised one is needed (export, gradients)."""


@dataclasses.dataclass
class Specialiser:
    """The model a template came from, how it was imported, and its specialised graphs."""

    proto: onnx.ModelProto
    options: dict[str, Any]
    names: list[str]
    declared: dict[str, Value]
    fixed: dict[str, np.ndarray]  # inputs the user bound in from_onnx(constants=...)
    cache: "OrderedDict[tuple, Graph]" = dataclasses.field(default_factory=OrderedDict)

    def graph_for(self, feeds: Mapping[str, Any]) -> Graph:
        """The graph specialised on the fed values of the specialisation inputs."""
        while True:
            key = self._key(feeds)  # a hit costs this key only; values are checked on a miss
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
            values = self._values(feeds)
            try:
                graph = _import(self.proto, {**self.fixed, **values}, self.options)
            except StaticInputError as e:
                new = [n for n in e.names if n not in self.names and n in self.declared]
                if not new:
                    raise
                self.names.extend(new)
                continue
            self.cache[key] = graph
            if len(self.cache) > CACHE_SIZE:
                self.cache.popitem(last=False)
            return graph

    def _key(self, feeds: Mapping[str, Any]) -> tuple:
        missing = [n for n in self.names if n not in feeds]
        if missing:
            raise FeedError(f"missing feed(s) {missing}: graphdl needs their values to build "
                            "the graph (they are specialisation inputs)")
        arrays = [(n, np.asarray(feeds[n])) for n in self.names]
        return tuple((n, a.dtype.str, a.shape, a.tobytes()) for n, a in arrays)

    def _values(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return check_feeds([self.declared[n] for n in self.names],
                           {n: feeds[n] for n in self.names})


@dataclasses.dataclass(frozen=True, eq=False)
class SpecialisableGraph(Graph):
    """A template: the model's inputs and outputs, no nodes; see the module docstring."""

    specialiser: Specialiser | None = None

    @property
    def specialise_on(self) -> list[str]:
        """The specialisation inputs found so far."""
        return list(self.specialiser.names) if self.specialiser else []


def _import(proto: onnx.ModelProto, constants: Mapping[str, np.ndarray],
            options: Mapping[str, Any]) -> Graph:
    """The model imported with ``constants`` bound; StaticInputError if it needs more."""
    from .importer import from_onnx

    graph = from_onnx(proto, constants=constants, **options)
    if isinstance(graph, SpecialisableGraph) and graph.specialiser is not None:
        names = tuple(n for n in graph.specialise_on if n not in constants)
        raise StaticInputError(f"needs the values of {names}", names)
    return graph


def _declared(proto: onnx.ModelProto) -> dict[str, Value]:
    """The model's tensor graph inputs (initializers excluded) as typed values."""
    from .boundary import tensor_type_of
    from ..core.types import TensorType

    inits = {t.name for t in proto.graph.initializer}
    declared = {}
    for vi in proto.graph.input:
        if vi.type.WhichOneof("value") == "tensor_type" and vi.name not in inits:
            dtype, shape = tensor_type_of(f"graph input {vi.name!r}", vi.type, "model")
            declared[vi.name] = Value(vi.name, TensorType(dtype, shape))
    return declared


def bind_constants(imp: Any) -> None:
    """Binds ``from_onnx(..., constants=...)``: each names a tensor graph input, holds a value
    of its declared type, and becomes a value known at import time."""
    if not imp.constants:
        return
    declared = _declared(imp.proto)
    unknown = sorted(set(imp.constants) - set(declared))
    if unknown:
        raise OnnxError(f"{imp.src}: constants names {unknown}, which are no tensor graph "
                        f"inputs; those are {sorted(declared)}")
    arrays = check_feeds([declared[n] for n in imp.constants], imp.constants)
    for name, arr in arrays.items():
        imp.static[name] = arr
        imp.pending[name] = "const"


def template(proto: onnx.ModelProto, error: StaticInputError, options: dict[str, Any],
             metadata: Mapping[str, str], fixed: dict[str, Any]) -> SpecialisableGraph:
    """The template for ``proto``, whose import stopped at ``error``."""
    from .boundary import tensor_type_of
    from ..core.types import TensorType

    declared = {k: v for k, v in _declared(proto).items() if k not in fixed}
    names = [n for n in error.names if n in declared]
    if not names:
        raise error
    outputs = []
    for vi in proto.graph.output:
        if vi.type.WhichOneof("value") == "tensor_type" and vi.type.tensor_type.elem_type:
            dtype, shape = tensor_type_of(f"graph output {vi.name!r}", vi.type, "model")
            outputs.append(Value(vi.name, TensorType(dtype, shape)))
    spec = Specialiser(proto, options, names, declared, fixed)
    inputs = tuple(declared.values())
    meta = {**metadata, "graphdl.specialise_on": ",".join(names)}
    return SpecialisableGraph(inputs, (), tuple(outputs), {}, proto.graph.name or "graph", meta,
                              specialiser=spec)


def specialise(graph: Graph, feeds: Mapping[str, Any]) -> Graph:
    """``graph`` itself, or for a template the graph specialised on ``feeds`` (which must hold
    every specialisation input; other feeds are ignored here)."""
    if not isinstance(graph, SpecialisableGraph) or graph.specialiser is None:
        return graph
    return graph.specialiser.graph_for(feeds)


def bind(graph: Graph, feeds: Mapping[str, Any]) -> tuple[Graph, dict[str, Any]]:
    """What an engine runs: the specialised graph and the feeds it takes (the specialisation
    inputs it no longer has as inputs are dropped)."""
    if not isinstance(graph, SpecialisableGraph) or graph.specialiser is None:
        return graph, dict(feeds)
    g = graph.specialiser.graph_for(feeds)
    taken = {v.name for v in g.inputs}
    dropped = set(graph.specialiser.names) - taken
    return g, {k: v for k, v in feeds.items() if k not in dropped}


def require_static(graph: Graph, what: str) -> None:
    """NotSpecialisedError when ``graph`` is a template that ``what`` cannot take."""
    if isinstance(graph, SpecialisableGraph) and graph.specialiser is not None:
        names = graph.specialise_on
        raise NotSpecialisedError(
            f"graph {graph.name!r} takes run-time values for inputs graphdl needs at import "
            f"time ({', '.join(names)}); {what} needs them: give their values "
            f"(graphdl.specialise(graph, {{{names[0]!r}: ...}}), or from_onnx(..., "
            f"constants={{...}}))")
