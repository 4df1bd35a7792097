"""Graph -> ONNX ModelProto at a pinned default opset.

Each op's ``lower`` rule emits standard-domain ONNX nodes through a :class:`LowerCtx`; composite
ops without a lowering are exported as their decomposition. Symbolic dims become ``dim_param``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..core.errors import OnnxError
from ..core.ir import Graph, Value
from ..core.names import NameGen
from ..core.registry import get_op
from ..core.rewrite import expand_composites
from ..core.types import TensorType, constant_key
from .coverage import lower_node

#: The newest opset of the pinned onnx (1.23); the pinned onnxruntime (1.32) has CPU kernels for
#: every op graphdl lowers to at this opset (tests/test_onnx_export.py checks it).
DEFAULT_OPSET = 28
MIN_OPSET = 16  # ScatterElements gained reduction="add" (gather's gradient) in opset 16
#: Stock onnxruntime (1.32) implements its random ops (RandomUniformLike) only up to their
#: opset-21 versions: a graph that draws random numbers exports at 21 unless told otherwise.
RANDOM_OPSET = 21


class LowerCtx:
    """Collects the ONNX nodes that lowering rules emit."""

    def __init__(self, opset: int, names: set[str], functions: bool = False):
        self.opset = opset
        self.functions = functions  # lower fused bodies as model-local ONNX functions
        self.function_protos: dict[str, onnx.FunctionProto] = {}
        self.nodes: list[onnx.NodeProto] = []
        self.names = NameGen(names, sep="__")  # taken names are the graph's own
        self._consts: dict[Any, str] = {}
        #: Names of node outputs that no node and no graph output reads: a lowering may leave
        #: such an optional ONNX output off (MaxPool's Indices make onnxruntime ~4x slower).
        self.unread: set[str] = set()

    def fresh(self, prefix: str) -> str:
        return self.names.fresh(prefix)

    def emit(self, op_type: str, inputs: Sequence[Value | str | None],
             outputs: Sequence[Value | str] | int = 1, **attrs: Any) -> list[str]:
        """Adds one ONNX node; ``outputs`` may be a count of fresh names. Returns output names."""
        if isinstance(outputs, int):
            outputs = [self.fresh(op_type.lower()) for _ in range(outputs)]
        ins = ["" if v is None else (v if isinstance(v, str) else v.name) for v in inputs]
        outs = [v if isinstance(v, str) else v.name for v in outputs]
        node = onnx.NodeProto(op_type=op_type, input=ins, output=outs, name=self.fresh(op_type))
        if attrs:
            node.attribute.extend(helper.make_attribute(k, _attr(v))
                                  for k, v in sorted(attrs.items()) if v is not None)
        self.nodes.append(node)
        return outs

    def emit_decomposition(self, node: Any) -> None:
        """Emits ``node`` as its op's decomposition: the lowering of an (op, dtype) that stock
        onnxruntime has no kernel for (e.g. float64 recurrent ops) calls this instead of
        emitting the op. Internal values get fresh names; the outputs keep the node's."""
        from ..core.builder import GraphBuilder

        b = GraphBuilder("decomposition")
        ins = [None if v is None else b.input(v.name, v.type.shape, v.type.dtype)
               for v in node.inputs]
        outs = get_op(node.op).decompose(b, ins, dict(node.attrs))
        sub, _ = expand_composites(b.build(list(outs)), lambda op: op.lower is None)
        outer = {v.name for v in sub.inputs}
        final = {id(v): o.name for v, o in zip(sub.outputs, node.outputs)}
        for n in sub.nodes:
            for v in n.outputs:
                v.name = final.pop(id(v), None) or self.fresh(v.name)
        for n in sub.nodes:
            get_op(n.op).lower(self, n)
        for v, o in zip(sub.outputs, node.outputs):  # an output that is an input, or repeated
            if v.name != o.name or v.name in outer:
                self.emit("Identity", [v], [o])

    def const(self, value: Any, dtype: Any = None) -> str:
        """A Constant node holding ``value`` (shared by equal small constants); its name."""
        arr = np.asarray(value, dtype=dtype)
        key = constant_key(arr)
        if key in self._consts:
            return self._consts[key]
        name = self.fresh("const")
        self.emit("Constant", [], [name], value=arr)
        if key is not None:
            self._consts[key] = name
        return name


def _attr(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return numpy_helper.from_array(v)
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v


def value_info(v: Value, cache: dict | None = None) -> onnx.ValueInfoProto:
    """A ValueInfoProto of v; ``cache`` shares the TypeProto of equal types (large graphs)."""
    cache = {} if cache is None else cache
    key = str(v.type)
    if key not in cache:
        cache[key] = make_value_info("", v.type).type
    info = onnx.ValueInfoProto(name=v.name)
    info.type.CopyFrom(cache[key])
    return info


def make_value_info(name: str, t: TensorType) -> onnx.ValueInfoProto:
    shape = None if t.shape is None else [
        d if isinstance(d, int) else (None if d is None else str(d)) for d in t.shape]
    return helper.make_tensor_value_info(name, t.dtype.onnx, shape)


def ir_version_for(opset: int) -> int:
    """The lowest IR version that carries ``opset`` (what onnxruntime expects)."""
    best = None
    for row in helper.VERSION_TABLE:
        ir, op = row[1], row[2]
        if op >= opset and (best is None or ir < best):
            best = ir
    if best is None:
        raise OnnxError(f"opset {opset} is newer than the installed onnx package knows")
    return best


def _lowered_inputs(node: Any) -> list[Value | None]:
    """The inputs of ``node`` its lowering reads (OpDef.lower_reads; default all)."""
    reads = get_op(node.op).lower_reads
    return list(node.inputs) if reads is None else [node.inputs[i] for i in reads(node)]


def _unread(g: Graph) -> set[str]:
    read = {v for n in g.nodes for v in _lowered_inputs(n) if v is not None} | set(g.outputs)
    return {v.name for n in g.nodes for v in n.outputs if v not in read}


def to_onnx(graph: Graph, opset: int | None = None, functions: bool = False) -> onnx.ModelProto:
    """A standard ONNX model of ``graph`` (parameters as initializers, dynamic dims kept).
    ``functions``: fused nodes become calls of model-local ONNX functions (one per distinct
    body) instead of their body inlined as standard ops. The default opset is DEFAULT_OPSET,
    or RANDOM_OPSET for a graph with a random op."""
    if opset is None:
        random = any("random" in get_op(n.op).traits for n in graph.nodes)
        opset = RANDOM_OPSET if random else DEFAULT_OPSET
    opset = int(opset)
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise OnnxError(f"cannot export at opset {opset}: graphdl exports opsets "
                        f"{MIN_OPSET} to {newest}")
    g, _ = expand_composites(graph, lambda op: op.lower is None)
    ctx = LowerCtx(opset, {v.name for v in g.all_values()}, functions)
    ctx.unread = _unread(g)
    for n in g.nodes:
        lower_node(ctx, n)  # the op's lowering, through a wider dtype where ORT needs one
    inits = [numpy_helper.from_array(np.asarray(a), v.name) for v, a in g.initializers.items()]
    outputs = list(g.outputs)
    out_set, types = set(outputs), {}
    emitted = {name for node in ctx.nodes for name in node.output}
    vinfo = [value_info(v, types) for n in g.nodes for v in n.outputs
             if v not in out_set and v.name in emitted]
    onnx_graph = helper.make_graph(ctx.nodes, graph.name, [value_info(v) for v in g.inputs],
                                   [value_info(v) for v in outputs], inits, value_info=vinfo)
    domains = sorted({f.domain for f in ctx.function_protos.values()})
    model = helper.make_model(onnx_graph, producer_name="graphdl",
                              opset_imports=[helper.make_opsetid("", opset)]
                              + [helper.make_opsetid(d, 1) for d in domains])
    model.functions.extend(ctx.function_protos.values())
    model.ir_version = ir_version_for(opset)
    return model
