"""A plain listing of an ONNX model, read from the file alone: what ``graphdl inspect`` prints
for a model it cannot import because of ops graphdl does not have, so the rest of the model
(its inputs, outputs, parameters, every node and its attributes) can still be looked at.

The model has passed graphdl's checks (graphdl/onnx/checks.py) before a listing is asked for;
the listing only reads names, types and attributes, never tensor data. The node outputs' types
are ONNX's own shape inference where it knows them (it knows every standard op, including the
ones graphdl lacks).
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import onnx
from onnx import helper

MAX_ITEMS = 8  # list attributes longer than this are shortened


def model_listing(proto: onnx.ModelProto, unsupported: Iterable[int] = ()) -> dict[str, Any]:
    """The model as plain data: opsets, inputs, outputs, parameters and nodes, with the
    nodes at the positions in ``unsupported`` marked."""
    g, marked = proto.graph, set(unsupported)
    inits = {t.name for t in g.initializer}
    types = _inferred_types(proto)
    params = [{"name": t.name, "dtype": _dtype(t.data_type), "shape": list(t.dims)}
              for t in g.initializer]
    return {
        "graph": g.name, "producer": proto.producer_name,
        "opsets": {o.domain or "ai.onnx": o.version for o in proto.opset_import},
        "inputs": [_value(v) for v in g.input if v.name not in inits],
        "outputs": [_value(v) for v in g.output],
        "parameters": params,
        "parameter_count": int(sum(int(np.prod(p["shape"])) for p in params)),
        "nodes": [_node(i, n, i in marked, types) for i, n in enumerate(g.node)],
        "unsupported_ops": sorted({g.node[i].op_type for i in marked}),
    }


def format_listing(d: dict[str, Any]) -> str:
    """The listing as ``graphdl inspect`` prints it."""
    out = [f"graph {d['graph']}  (ONNX, not imported; opsets "
           + ", ".join(f"{k} {v}" for k, v in d["opsets"].items()) + ")", "inputs:"]
    out += [f"  %{v['name']}: {v['type']}" for v in d["inputs"]] or ["  (none)"]
    out.append("outputs:")
    out += [f"  %{v['name']}: {v['type']}" for v in d["outputs"]]
    out.append(f"nodes ({len(d['nodes'])}):")
    for n in d["nodes"]:
        attrs = ", ".join(f"{k}={v}" for k, v in n["attrs"].items())
        outs = ", ".join(f"{o}: {t}" if t else o for o, t in zip(n["outputs"], n["types"]))
        line = f"  #{n['index']} {n['op']}({', '.join(n['inputs'])}) -> {outs}"
        line += f"  {{{attrs}}}" if attrs else ""
        out.append(line + ("   <- not supported by graphdl" if not n["supported"] else ""))
    out.append(f"parameters ({len(d['parameters'])} tensors):")
    out += [f"  %{p['name']}: {p['dtype']}[{','.join(map(str, p['shape']))}]"
            for p in d["parameters"]]
    out.append(f"parameter count: {d['parameter_count']}")
    return "\n".join(out)


def _inferred_types(proto: onnx.ModelProto) -> dict[str, str]:
    """Value name -> its type as ONNX's shape inference gives it (empty where it fails)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # onnx raises several kinds; the listing then shows names only
        return {}
    g = inferred.graph
    return {v.name: _type(v.type) for v in list(g.value_info) + list(g.output)
            if v.type.WhichOneof("value")}


def _dtype(code: int) -> str:
    """NumPy's name where NumPy has the type (float32, int64, ...), else ONNX's."""
    try:
        return helper.tensor_dtype_to_np_dtype(code).name
    except (KeyError, TypeError, ValueError):
        pass
    try:
        return onnx.TensorProto.DataType.Name(code).lower()
    except ValueError:
        return f"type {code}"


def _value(v: onnx.ValueInfoProto) -> dict[str, str]:
    return {"name": v.name, "type": _type(v.type)}


def _type(tp: onnx.TypeProto) -> str:
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        t = tp.tensor_type
        if not t.HasField("shape"):
            return f"{_dtype(t.elem_type)}[?]"
        dims = [str(d.dim_value) if d.HasField("dim_value") else d.dim_param or "?"
                for d in t.shape.dim]
        return f"{_dtype(t.elem_type)}[{','.join(dims)}]"
    if kind == "sequence_type":
        return f"sequence({_type(tp.sequence_type.elem_type)})"
    if kind == "optional_type":
        return f"optional({_type(tp.optional_type.elem_type)})"
    return kind or "undefined"


def _node(i: int, n: onnx.NodeProto, unsupported: bool,
          types: dict[str, str]) -> dict[str, Any]:
    op = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
    return {"index": i, "name": n.name, "op": op, "inputs": list(n.input),
            "outputs": list(n.output), "types": [types.get(o, "") for o in n.output],
            "supported": not unsupported, "attrs": {a.name: _attr(a) for a in n.attribute}}


def _attr(a: onnx.AttributeProto) -> Any:
    """A short, JSON-friendly form: numbers, strings and short lists as they are; tensors and
    graphs by their type."""
    if a.type == onnx.AttributeProto.TENSOR:
        return f"tensor {_dtype(a.t.data_type)}{list(a.t.dims)}"
    if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return "graph"
    value = helper.get_attribute_value(a)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        items = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
        if all(isinstance(v, (int, float, str)) for v in items):
            return items if len(items) <= MAX_ITEMS else items[:MAX_ITEMS] + ["..."]
        return f"{len(items)} items"
    return value if isinstance(value, (int, float, str)) else type(value).__name__
