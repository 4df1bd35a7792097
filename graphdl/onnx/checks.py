"""Structural checks of an ONNX model before graphdl imports it: a model downloaded from anywhere
is refused with an error naming what is wrong and where, never a crash or a huge allocation.

Checked here, in this order: every string is valid text, opsets, unique definitions of values,
the node graph (outputs, dangling inputs, cycles, order), attribute types against the ONNX
schema, declared dims, and initializers (element type, dims, byte size against their data and
against the byte budget).
"""
from __future__ import annotations

from typing import Any

import networkx as nx
import onnx
from onnx import AttributeProto, TensorProto

from ..core.errors import GraphError, OnnxError
from ..core.limits import check_bytes, element_count
from ..core.types import DType

DEFAULT_DOMAINS = ("", "ai.onnx")


class OnnxStructureError(OnnxError):
    """A model whose structure is broken: bad names, duplicate or missing values, cycles."""


class OnnxOpsetError(OnnxError):
    """An opset, op type or domain that graphdl does not import."""


class OnnxAttributeError(OnnxError):
    """An attribute whose type disagrees with the op's schema or with its own type tag."""


class OnnxTensorError(OnnxError):
    """A tensor (initializer or declared type) whose dims, element type or data are invalid."""


def check_model(proto: onnx.ModelProto, src: str, max_bytes: int) -> int:
    """Checks ``proto`` (see the module docstring) and returns its default-domain opset."""
    check_text(proto, "model", src)
    opset = check_opsets(proto, src)
    g = proto.graph
    _check_names(g, src)
    _check_node_graph(g, src)
    for i, node in enumerate(g.node):
        _check_attributes(node, node_where(i, node), opset, max_bytes)
    for vi in [*g.input, *g.output, *g.value_info]:
        _check_declared_dims(vi, src)
    for t in g.initializer:
        check_tensor(t, f"{src}: initializer {t.name!r}", max_bytes)
    return opset


def node_where(i: int, node: onnx.NodeProto) -> str:
    """How errors name a node: 'ONNX node NAME (op T)' or 'ONNX node #i (op T)'."""
    where = f"ONNX node {node.name!r}" if node.name else f"ONNX node #{i}"
    return f"{where} (op {node.op_type})"


def check_opsets(proto: onnx.ModelProto, src: str) -> int:
    """The default-domain opset, which must lie between 1 and the newest the installed onnx
    package knows (graphdl's importers follow the ONNX schemas of that package)."""
    newest = onnx.defs.onnx_opset_version()
    found = None
    for imp in proto.opset_import:
        if imp.domain in DEFAULT_DOMAINS:
            if found is not None and found != imp.version:
                raise OnnxOpsetError(f"{src}: the default ONNX domain is imported twice, at "
                                     f"opsets {found} and {imp.version}")
            found = imp.version
    if found is None:
        raise OnnxOpsetError(f"{src}: the model imports no version of the default ONNX domain")
    if not 1 <= found <= newest:
        raise OnnxOpsetError(f"{src}: default-domain opset {found} is not supported; graphdl "
                             f"imports opsets 1 to {newest}")
    return int(found)


def check_text(msg: Any, path: str, src: str) -> None:
    """Every string field, at any depth, is text without NUL characters: protobuf hands back
    bytes for invalid UTF-8, and NUL breaks file names and C APIs further on."""
    for field, value in msg.ListFields():
        repeated = _is_repeated(field)
        for k, item in enumerate(value if repeated else [value]):
            where = f"{path}.{field.name}" + (f"[{k}]" if repeated else "")
            if field.type == field.TYPE_STRING and (not isinstance(item, str) or "\0" in item):
                raise OnnxStructureError(f"{src}: {where} is not valid text ({item!r})")
            if field.type == field.TYPE_MESSAGE:
                check_text(item, where, src)


def _is_repeated(field: Any) -> bool:
    """protobuf >= 5 has ``is_repeated``; older versions only ``label``."""
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return field.label == field.LABEL_REPEATED


def _check_names(g: onnx.GraphProto, src: str) -> None:
    """Every value has one definition: a graph input, an initializer (possibly also listed as
    an input) or a node."""
    seen: dict[str, str] = {}
    inputs: dict[str, str] = {}
    for vi in g.input:  # an initializer may also be listed as an input (IR < 4)
        _define(inputs, vi.name, f"graph input {vi.name!r}", src)
    for t in g.initializer:
        _define(seen, t.name, f"initializer {t.name!r}", src)
    for name, what in inputs.items():
        if name not in seen:
            seen[name] = what
    for i, n in enumerate(g.node):
        for name in n.output:
            if name:
                _define(seen, name, node_where(i, n), src)


def _define(seen: dict[str, str], name: str, what: str, src: str) -> None:
    if not name:
        raise OnnxStructureError(f"{src}: {what} has an empty name")
    if name in seen:
        raise OnnxStructureError(f"{src}: value {name!r} is defined twice: by {seen[name]} and "
                                 f"by {what}")
    seen[name] = what


def _check_node_graph(g: onnx.GraphProto, src: str) -> None:
    """Dangling inputs, cycles (reported as the cycle itself) and nodes out of order."""
    producer = {o: i for i, n in enumerate(g.node) for o in n.output if o}
    leaves = {v.name for v in g.input} | {t.name for t in g.initializer}
    dep = nx.DiGraph()
    dep.add_nodes_from(range(len(g.node)))
    for i, n in enumerate(g.node):
        for name in n.input:
            if name and name not in producer and name not in leaves:
                raise OnnxStructureError(f"{node_where(i, n)} reads {name!r}, which no node, "
                                         "graph input or initializer defines (dangling input)")
            if name in producer:
                dep.add_edge(producer[name], i)
    if not g.output:
        raise OnnxStructureError(f"{src}: the graph has no outputs")
    for o in g.output:
        if o.name not in producer and o.name not in leaves:
            raise OnnxStructureError(f"{src}: graph output {o.name!r} is not defined by any "
                                     "node, graph input or initializer")
    try:
        cycle = nx.find_cycle(dep)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        steps = [node_where(a, g.node[a]) for a, _ in cycle]
        steps.append(steps[0])
        raise OnnxStructureError(f"{src}: the nodes form a cycle: {' -> '.join(steps)}")
    for a, b in dep.edges:
        if a > b:
            raise OnnxStructureError(f"{node_where(b, g.node[b])} reads a value that a later "
                                     f"node, {node_where(a, g.node[a])}, defines; ONNX nodes "
                                     "must be in topological order")


#: The field of AttributeProto that holds each attribute type's value.
_ATTR_FIELDS = {AttributeProto.FLOAT: "f", AttributeProto.INT: "i", AttributeProto.STRING: "s",
                AttributeProto.TENSOR: "t", AttributeProto.GRAPH: "g",
                AttributeProto.SPARSE_TENSOR: "sparse_tensor", AttributeProto.TYPE_PROTO: "tp",
                AttributeProto.FLOATS: "floats", AttributeProto.INTS: "ints",
                AttributeProto.STRINGS: "strings", AttributeProto.TENSORS: "tensors",
                AttributeProto.GRAPHS: "graphs", AttributeProto.SPARSE_TENSORS: "sparse_tensors",
                AttributeProto.TYPE_PROTOS: "type_protos"}


def _set_fields(a: AttributeProto) -> set[str]:
    return {f.name for f, _ in a.ListFields() if f.name in _ATTR_FIELDS.values()}


def _check_attributes(node: onnx.NodeProto, where: str, opset: int, max_bytes: int) -> None:
    """Each attribute's type tag matches the field it fills and the type the ONNX schema of the
    op declares, and tensors in attributes are valid. (Missing attributes are left to the
    importers, which accept some inputs-for-attributes forms of neighbouring opsets.)"""
    schema = _schema(node, where, opset)
    names = set()
    for a in node.attribute:
        if a.name in names:
            raise OnnxAttributeError(f"{where}: attribute {a.name!r} is given twice")
        names.add(a.name)
        if a.ref_attr_name:
            raise OnnxAttributeError(f"{where}: attribute {a.name!r} refers to a function "
                                     "attribute, which graphdl does not import")
        tag = _ATTR_FIELDS.get(a.type)
        if tag is None:
            raise OnnxAttributeError(f"{where}: attribute {a.name!r} has no valid type tag "
                                     f"({a.type})")
        stray = _set_fields(a) - {tag}
        if stray:
            raise OnnxAttributeError(f"{where}: attribute {a.name!r} is tagged "
                                     f"{AttributeProto.AttributeType.Name(a.type)} but fills "
                                     f"{', '.join(sorted(stray))}")
        for k, t in enumerate([a.t] if a.type == AttributeProto.TENSOR else a.tensors):
            check_tensor(t, f"{where}: attribute {a.name!r} tensor {k}", max_bytes)
        want = schema.attributes.get(a.name)
        if want is not None and int(want.type) != a.type:
            raise OnnxAttributeError(
                f"{where}: attribute {a.name!r} must be "
                f"{AttributeProto.AttributeType.Name(int(want.type))}, got "
                f"{AttributeProto.AttributeType.Name(a.type)}")


#: the ops graphdl imports from a domain other than the default one, with its version there
OTHER_DOMAIN_OPS = {("ai.onnx.preview.training", "Gradient"): 1}


def _schema(node: onnx.NodeProto, where: str, opset: int) -> Any:
    if node.domain not in DEFAULT_DOMAINS:
        version = OTHER_DOMAIN_OPS.get((node.domain, node.op_type))
        if version is None:
            raise OnnxOpsetError(f"{where}: domain {node.domain!r} is not supported; graphdl "
                                 "imports the default ONNX domain, and Gradient from "
                                 "ai.onnx.preview.training")
        return onnx.defs.get_schema(node.op_type, version, node.domain)
    try:
        return onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        raise OnnxOpsetError(f"{where}: ONNX defines no op {node.op_type!r} at opset "
                             f"{opset}") from None


def _check_declared_dims(vi: onnx.ValueInfoProto, src: str) -> None:
    """Declared dims are non-negative and their product fits in int64."""
    if vi.type.WhichOneof("value") != "tensor_type":
        return
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return
    dims = [d.dim_value for d in tt.shape.dim if d.HasField("dim_value")]
    element_count(dims, f"{src}: value {vi.name!r}")


def _expected_items(t: TensorProto, count: int) -> tuple[str, int]:
    if t.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128):
        return onnx.helper.tensor_dtype_to_field(t.data_type), 2 * count
    return onnx.helper.tensor_dtype_to_field(t.data_type), count


def check_tensor(t: TensorProto, what: str, max_bytes: int) -> int:
    """A tensor's element type is one graphdl supports, its dims are valid and within the byte
    budget, and (for data stored inline) the data it carries has exactly the size its dims
    declare. Returns the byte size."""
    if t.data_type not in TensorProto.DataType.values():
        raise OnnxTensorError(f"{what}: unknown element type code {t.data_type}")
    try:
        dtype = DType.from_onnx(t.data_type)
    except GraphError as e:
        raise OnnxTensorError(f"{what}: {e}") from None
    size = check_bytes(t.dims, dtype.itemsize, what, max_bytes)
    if t.data_location == TensorProto.EXTERNAL:
        return size
    count = element_count(t.dims, what)
    if t.HasField("raw_data") and dtype.is_string:
        raise OnnxTensorError(f"{what}: a STRING tensor keeps its strings in string_data, "
                              "not raw_data")
    if t.HasField("raw_data"):
        if len(t.raw_data) != size:
            raise OnnxTensorError(f"{what}: dims {list(t.dims)} of {dtype.name} need {size} "
                                  f"bytes, but its raw data holds {len(t.raw_data)}")
        return size
    field, want = _expected_items(t, count)
    got = len(getattr(t, field))
    if got != want:
        raise OnnxTensorError(f"{what}: dims {list(t.dims)} need {want} values, but its "
                              f"{field} holds {got}")
    return size
