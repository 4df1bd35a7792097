"""ONNX -> graphdl: a ``ModelProto`` becomes a :class:`Graph` through an explicit importer table.

Each ONNX op type maps to one short function (in :mod:`graphdl.onnx.importers`) that builds
graphdl ops with the ordinary :class:`GraphBuilder`, so graphdl's own rules infer every type as
the graph is rebuilt; ONNX's recorded shapes are only hints and are not trusted. Initializers
become parameters, ``dim_param`` dims become symbols, and every error names the ONNX node.
"""
from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping, Sequence

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from ..core.builder import GraphBuilder, Tensor
from ..core.errors import GraphError, OnnxError, UnsupportedOpError
from .external_data import all_tensors, read_external
from ..core.ir import Graph, Value
from ..core.limits import DEFAULT_MAX_BYTES, check_graph
from .boundary import Absent, Boundary, add_output, check_options, input_value
from .checks import check_model, node_where
from ..core.types import DType

if TYPE_CHECKING:
    from .importers.sequence import StaticSequence

_REQUIRED: Any = object()
#: What an importer returns for an output it leaves to be created on first use (Constant).
DEFERRED: Any = object()

ImportFn = Callable[["NodeCtx"], "Tensor | StaticSequence | Sequence[Tensor | None]"]


def from_onnx(model: onnx.ModelProto | str | Path,
              max_bytes: int = DEFAULT_MAX_BYTES, *,
              sequence_lengths: Mapping[str, int] | None = None,
              absent_inputs: Collection[str] = ()) -> Graph:
    """A graph from an ``onnx.ModelProto`` or the path of an ``.onnx`` file. The model is
    checked first (:mod:`graphdl.onnx.checks`); no tensor, stored or computed with static
    shape, may exceed ``max_bytes``.

    graphdl graphs are static and hold tensors only, so sequence and optional values at the
    graph's boundary are resolved at import time. A sequence input ``x`` needs its length n in
    ``sequence_lengths`` and becomes n tensor inputs ``x.0`` ... ``x.{n-1}``; a sequence output
    ``y`` becomes tensor outputs ``y.0``, ``y.1``, ... An optional input is taken as present
    (its element's type) unless named in ``absent_inputs``, which makes it absent and no graph
    input at all; an optional output must be present. The graph's metadata records the
    mapping (``graphdl.sequence_inputs``, ``graphdl.sequence_outputs``: JSON, name -> tensor
    names; ``graphdl.absent_inputs``)."""
    proto, src = _load(model, max_bytes)
    opset = check_model(proto, src, max_bytes)
    absent = [absent_inputs] if isinstance(absent_inputs, str) else absent_inputs  # one name
    boundary = Boundary(dict(sequence_lengths or {}), frozenset(absent))
    try:
        graph = Importer(proto, opset, src, boundary).run()
    except (ValueError, TypeError, OverflowError, IndexError, KeyError) as e:
        raise OnnxError(f"{src}: cannot import ({type(e).__name__}: {e})") from None
    check_graph(graph, max_bytes)
    meta = {**model_metadata(proto, opset), **boundary.metadata()}
    return dataclasses.replace(graph, metadata=meta)


def model_metadata(proto: onnx.ModelProto, opset: int) -> dict[str, str]:
    """A model's own facts (producer, versions, doc string) and its metadata_props."""
    facts = {"producer_name": proto.producer_name, "producer_version": proto.producer_version,
             "domain": proto.domain, "model_version": str(proto.model_version),
             "doc_string": proto.doc_string, "ir_version": str(proto.ir_version),
             "opset": str(opset)}
    meta = {k: v for k, v in facts.items() if v not in ("", "0")}
    meta.update({p.key: p.value for p in proto.metadata_props})
    return meta


def _load(model: onnx.ModelProto | str | Path, max_bytes: int) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        return model, f"model {model.graph.name!r}"
    if not isinstance(model, (str, os.PathLike)):
        raise OnnxError(f"from_onnx takes a ModelProto or a path, not {type(model).__name__}")
    path = os.fspath(model)
    if not stat.S_ISREG(os.stat(path).st_mode):  # a missing file raises OSError naming it
        raise OnnxError(f"{path}: not a regular file (a device, FIFO or folder)")
    try:
        proto = onnx.load(path, load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, onnx.checker.ValidationError) as e:
        raise OnnxError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    if not proto.HasField("graph"):
        raise OnnxError(f"{path}: not an ONNX model (it holds no graph)")
    _load_external_data(proto, path, max_bytes)
    return proto, path


def _load_external_data(proto: onnx.ModelProto, path: str, max_bytes: int) -> None:
    """Reads tensors stored beside the model under the rules of
    :mod:`graphdl.onnx.external_data`."""
    from onnx.external_data_helper import uses_external_data

    base = os.path.dirname(os.path.abspath(path))
    for tensor in all_tensors(proto.graph):
        if uses_external_data(tensor):
            read_external(tensor, base, f"{path}: tensor {tensor.name!r}", max_bytes)


class Importer:
    """Walks one ONNX graph in order, binding each ONNX value name to a graphdl tensor.

    Constants and non-float initializers are created lazily, on their first use as a tensor, so
    those read only as static attributes (axes, shapes) leave no dead node or parameter behind.
    """

    def __init__(self, proto: onnx.ModelProto, opset: int, src: str,
                 boundary: Boundary | None = None):
        self.g, self.opset, self.src, self.proto = proto.graph, opset, src, proto
        self.boundary = boundary or Boundary({}, frozenset())
        names = {v.name for v in self.g.input} | {t.name for t in self.g.initializer}
        self.onnx_names = names | {o for n in self.g.node for o in n.output}
        self.b = GraphBuilder(self.g.name or "graph")
        self.b.reserve(self.onnx_names)  # given to values later: fresh names avoid them
        # sequences and absent optionals are import-time values (see onnx_boundary)
        self.env: dict[str, Tensor | StaticSequence | Absent] = {}
        self.static: dict[str, np.ndarray] = {}  # values known at import time
        self.pending: dict[str, str] = {}  # name -> "param" | "const", not yet materialised
        self.bound: set[Value] = set()

    def run(self) -> Graph:
        if len(self.g.sparse_initializer):
            raise OnnxError(f"{self.src}: sparse initializers are not supported")
        self._initializers()
        self._inputs()
        from .importers import import_table

        table = import_table()

        for i, node in enumerate(self.g.node):
            self._node(i, node, table)
        self.b.loc = None
        outs: dict[str, Tensor] = {}
        for vi in self.g.output:
            add_output(self, vi, outs)
        return self.b.build(outs)

    # -- leaves --------------------------------------------------------------------------------
    def _initializers(self) -> None:
        for t in self.g.initializer:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                raise OnnxError(f"{self.src}: initializer {t.name!r} keeps its data in an "
                                "external file; pass the model's path so graphdl can read it")
            try:
                arr = numpy_helper.to_array(t)
                is_float = DType.of(arr.dtype).is_float
            except (GraphError, ValueError, TypeError) as e:
                raise OnnxError(f"{self.src}: initializer {t.name!r}: {e}") from None
            self.static[t.name] = arr
            if is_float:
                self.env[t.name] = self.b.param(t.name, arr)
                self.bound.add(self.env[t.name].value)
            else:
                self.pending[t.name] = "param"

    def _inputs(self) -> None:
        check_options(self)
        for vi in self.g.input:
            if vi.name in self.static:
                continue  # an initializer listed as an input (IR < 4): a parameter
            self.env[vi.name] = input_value(self, vi)

    def tensor(self, name: str, user: str) -> Tensor:
        """The tensor bound to ``name``, materialising a pending constant or parameter."""
        if name in self.env:
            t = self.env[name]
            if isinstance(t, Absent):
                raise OnnxError(f"{user} reads {name!r}, an absent optional (from {t.where}), "
                                "where a tensor is needed")
            if not isinstance(t, Tensor):
                raise OnnxError(f"{user} reads {name!r}, a sequence (made by {t.where}), where "
                                "a tensor is needed; graphdl resolves sequences at import time, "
                                "so only the Sequence*, Optional* ops, ConcatFromSequence and "
                                "Identity read them")
            return t
        kind = self.pending.pop(name, None)
        if kind is None:
            raise OnnxError(f"{user} reads {name!r}, which no earlier node, graph input or "
                            "initializer defines")
        arr = self.static[name]
        if kind == "param":
            t = self.b.param(name, arr)
        else:
            (t,) = self.b.apply("constant", [], names=[name], value=arr)
        self.env[name] = t
        self.bound.add(t.value)
        return t

    # -- nodes ---------------------------------------------------------------------------------
    def _node(self, i: int, node: onnx.NodeProto, table: dict[str, ImportFn]) -> None:
        where = node_where(i, node)  # check_model has refused other domains already
        fn = table.get(node.op_type)
        if fn is None:
            others = [k for k, n in enumerate(self.g.node) if n.op_type not in table]
            more = f" (and {len(others) - 1} more unsupported nodes)" if len(others) > 1 else ""
            raise UnsupportedOpError(
                f"{where} is not supported at opset {self.opset}{more}; graphdl imports: "
                f"{', '.join(sorted(table))}", self.proto, tuple(others))
        self.b.loc = where
        try:
            result = fn(NodeCtx(self, node, where))
        except GraphError as e:
            if where in str(e):
                raise
            raise type(e)(f"{where}: {e}") from None
        outs = list(result) if isinstance(result, (list, tuple)) else [result]
        self._bind(node, outs, where)

    def _bind(self, node: onnx.NodeProto, outs: list, where: str) -> None:
        for k, name in enumerate(node.output):
            if not name:
                continue
            if k >= len(outs) or outs[k] is None:
                raise OnnxError(f"{where}: output {k} ({name!r}) is not supported by graphdl")
            if outs[k] is DEFERRED:
                continue
            if name in self.env or name in self.pending:
                raise OnnxError(f"{where}: value {name!r} is defined twice")
            if not isinstance(outs[k], Tensor):  # a static sequence or absent optional
                self.env[name] = outs[k]
                continue
            t = self.b.rename(outs[k], name, taken=self.bound)
            self.env[name] = t
            self.bound.add(t.value)
            if t.type.known is not None and all(isinstance(d, int) for d in t.type.known):
                self.static.setdefault(name, np.asarray(t.type.known, np.int64))


def attr_value(a: onnx.AttributeProto) -> Any:
    """An ONNX attribute as a Python value: strings decoded, tensors as arrays, lists as tuples."""
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list):
        return tuple(x.decode("utf-8") if isinstance(x, bytes) else x for x in v)
    return v


class NodeCtx:
    """What an importer function sees of one ONNX node: its inputs (as tensors, or as values
    known at import time), its attributes, the opset and the builder."""

    def __init__(self, imp: Importer, node: onnx.NodeProto, where: str):
        self.imp, self.node, self.where = imp, node, where
        self.b: GraphBuilder = imp.b
        self.opset = imp.opset
        self.attrs = {a.name: attr_value(a) for a in node.attribute}

    def fail(self, msg: str) -> OnnxError:
        return OnnxError(f"{self.where}: {msg}")

    def attr(self, name: str, default: Any = _REQUIRED) -> Any:
        if name in self.attrs:
            return self.attrs[name]
        if default is _REQUIRED:
            raise self.fail(f"attribute {name!r} is required")
        return default

    def has(self, i: int) -> bool:
        """Whether optional input ``i`` is given."""
        return i < len(self.node.input) and self.node.input[i] != ""

    def x(self, i: int) -> Tensor:
        """Input ``i`` as a tensor (required)."""
        if not self.has(i):
            raise self.fail(f"input {i} is required")
        return self.imp.tensor(self.node.input[i], self.where)

    def value(self, i: int) -> "Tensor | StaticSequence | Absent":
        """Input ``i`` (required) as whatever it is bound to: a tensor, a static sequence or an
        absent optional."""
        if not self.has(i):
            raise self.fail(f"input {i} is required")
        bound = self.imp.env.get(self.node.input[i])
        if bound is None or isinstance(bound, Tensor):
            return self.x(i)
        return bound

    def opt(self, i: int) -> Tensor | None:
        return self.x(i) if self.has(i) else None

    def xs(self) -> list[Tensor]:
        """Every given input, as tensors."""
        return [self.x(i) for i in range(len(self.node.input)) if self.has(i)]

    def static(self, i: int) -> np.ndarray | None:
        """Input ``i``'s value when known at import time (initializer, Constant, shape arithmetic
        that graphdl follows exactly), else None."""
        if not self.has(i):
            return None
        return self.imp.static.get(self.node.input[i])

    def ints(self, i: int, what: str) -> tuple[int, ...]:
        """Input ``i`` as a tuple of ints; it must be known at import time."""
        arr = self.static(i)
        if arr is None:
            raise self.fail(f"{what} (input {i}, {self.node.input[i]!r}) must be a constant; "
                            "graphdl needs it at import time")
        return tuple(int(v) for v in np.asarray(arr).reshape(-1))

    def defer_constant(self, arr: np.ndarray) -> Any:
        """Output 0 holds ``arr``; its constant node is made on its first use as a tensor."""
        name = self.node.output[0]
        self.imp.static[name] = arr
        self.imp.pending[name] = "const"
        return DEFERRED

    def int_vector(self, i: int) -> Tensor:
        """Input ``i`` as an int64 vector tensor: a constant (whose contents shape inference
        follows) when known at import time, else the computed tensor."""
        arr = self.static(i)
        if arr is not None:
            return self.b.const(np.asarray(arr, np.int64))
        return self.x(i)
