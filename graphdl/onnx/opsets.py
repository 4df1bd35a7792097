"""Which ONNX opset and IR version an export targets, and whether an emitted node exists there.

Deployed runtimes lag the newest ONNX: onnxruntime-node 1.30 refuses IR version 14, mobile and
web builds lag further. So export writes a *portable* opset by default (:data:`PORTABLE_OPSET`),
raises it only as far as a graph's ops need, stamps the lowest IR version that carries the opset,
and checks every node it emits against ``onnx.defs.get_schema(op, opset)`` (:func:`check_node`),
so that a lowering written for a newer opset is refused by name instead of written broken.
"""
from __future__ import annotations

import re
from typing import Any

import onnx
from onnx import helper

from ..core.errors import OnnxError

#: The newest opset of the installed onnx package.
NEWEST_OPSET = onnx.defs.onnx_opset_version()
#: The lowest opset graphdl exports: opset 13 moved Split/Squeeze/Unsqueeze/ReduceSum axes to
#: inputs and gave Softmax its per-axis meaning, which graphdl's lowerings rely on. Ops that need
#: more (ScatterElements with a reduction: gather's gradient, 16) refuse lower opsets by name.
MIN_OPSET = 13
#: The default of ``graphdl export``/``grad``/``train-step`` and of ``to_onnx``: opset 17 (IR 8)
#: loads in every onnxruntime since 1.12 (Python, Node.js, web, mobile), is the newest opset
#: TensorRT 8.6 parses, and has LayerNormalization; no graphdl op needs more except those that
#: ask for it (ScatterElements' max/min: 18, Equal on strings: 19), which raise it themselves.
PORTABLE_OPSET = 17

#: onnxruntime minor version -> (newest ONNX opset, newest IR version) it loads. Rows 1.14-1.22
#: are onnxruntime's compatibility table (the opset and IR of the onnx each release bundles);
#: 1.30 (onnxruntime-node), 1.31 (onnxruntime, the newest onnxruntime-gpu) and 1.32 were
#: measured by loading one-node models at every opset and IR version; 1.23-1.29 are held at
#: 1.22's values (certainly loaded, perhaps not the newest they load).
ORT_LIMITS: dict[tuple[int, int], tuple[int, int]] = {
    (1, 14): (18, 8), (1, 15): (19, 9), (1, 16): (19, 9), (1, 17): (20, 9),
    (1, 18): (21, 10), (1, 19): (21, 10), (1, 20): (21, 10), (1, 21): (22, 10),
    (1, 22): (23, 11), **{(1, m): (23, 11) for m in range(23, 30)},
    (1, 30): (26, 13), (1, 31): (26, 13), (1, 32): (28, 14),
}
#: Stock onnxruntime implements its random ops (RandomUniformLike) only up to their opset-21
#: versions: a target runtime's opset is capped there for a graph that draws random numbers.
ORT_RANDOM_MAX_OPSET = 21


class OpsetError(OnnxError):
    """A node that the target opset cannot express; ``needed`` is the lowest opset that can
    (None when unknown), so export can pick it when the opset was not given."""

    def __init__(self, message: str, needed: int | None = None):
        super().__init__(message)
        self.needed = needed


def ir_version_for(opset: int) -> int:
    """The lowest IR version that carries ``opset`` (what older runtimes accept)."""
    irs = [row[1] for row in helper.VERSION_TABLE if row[2] >= opset]
    if not irs:
        raise OnnxError(f"opset {opset} is newer than the installed onnx package knows")
    return min(irs)


def check_range(opset: int) -> int:
    """``opset`` as an int, or OnnxError when graphdl cannot export at it."""
    opset = int(opset)
    if not MIN_OPSET <= opset <= NEWEST_OPSET:
        raise OnnxError(f"cannot export at opset {opset}: graphdl exports opsets "
                        f"{MIN_OPSET} to {NEWEST_OPSET}")
    return opset


def parse_target(target: str) -> tuple[int, int]:
    """``onnxruntime==X.Y[.Z]`` -> (newest opset, newest IR version) of that runtime."""
    m = re.fullmatch(r"\s*onnxruntime(?:-gpu|-node|-web)?\s*==\s*(\d+)\.(\d+)(?:\.\d+)?\s*",
                     target)
    if not m:
        raise OnnxError(f"target {target!r}: expected onnxruntime==X.Y (e.g. onnxruntime==1.30)")
    key = (int(m[1]), int(m[2]))
    if key not in ORT_LIMITS:
        known = ", ".join(f"{a}.{b}" for a, b in sorted(ORT_LIMITS))
        raise OnnxError(f"target {target!r}: graphdl knows onnxruntime {known}")
    opset, ir = ORT_LIMITS[key]
    return min(opset, NEWEST_OPSET), ir


def installed_ort_target() -> str | None:
    """The ``onnxruntime==X.Y`` target of the installed onnxruntime (``onnxruntime`` or
    ``onnxruntime-gpu``, which share the module), or None for one graphdl has no row for (the
    portable default then applies): what graphdl exports at to run a graph in it."""
    import onnxruntime

    parts = onnxruntime.__version__.split(".")[:2]
    key = (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0))
    return f"onnxruntime=={key[0]}.{key[1]}" if key in ORT_LIMITS else None


def check_node(node: onnx.NodeProto, opset: int, where: str,
               types: dict[str, int] | None = None) -> None:
    """OpsetError unless ONNX defines ``node`` (op type, attributes, input and output counts,
    and the element types of the inputs named in ``types``) at ``opset``; the error names the
    lowest newer opset where it does."""
    problem = node_problem(node, opset, types)
    if problem is None:
        return
    needed = next((o for o in range(opset + 1, NEWEST_OPSET + 1)
                   if node_problem(node, o, types) is None), None)
    hint = f"; it needs opset >= {needed}" if needed else ""
    raise OpsetError(f"{where}: lowers to ONNX {node.op_type}, which {problem} at opset "
                     f"{opset}{hint}", needed)


def node_problem(node: onnx.NodeProto, opset: int,
                 types: dict[str, int] | None = None) -> str | None:
    """What makes ``node`` invalid at ``opset`` (None when valid)."""
    if node.domain not in ("", "ai.onnx"):
        return None  # model-local functions: their bodies are checked on their own
    try:
        schema: Any = onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        return "does not exist"
    if schema.deprecated:
        return "is deprecated"
    extra = sorted(a.name for a in node.attribute if a.name not in schema.attributes)
    if extra:
        return f"has no attribute(s) {extra}"
    if not schema.min_input <= len(node.input) <= schema.max_input:
        return f"takes {schema.min_input} to {schema.max_input} inputs, not {len(node.input)}"
    if not schema.min_output <= len(node.output) <= schema.max_output:
        return f"has {schema.min_output} to {schema.max_output} outputs, not {len(node.output)}"
    return _type_problem(node, schema, types or {})


def _type_problem(node: onnx.NodeProto, schema: Any, types: dict[str, int]) -> str | None:
    """An input whose element type the schema's type constraint leaves out (int16 Add before
    opset 14, say); inputs whose type is not known here are not checked."""
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    formals = list(schema.inputs)
    for i, name in enumerate(node.input):
        if not name or name not in types or not formals:
            continue
        formal = formals[min(i, len(formals) - 1)]
        elem = onnx.TensorProto.DataType.Name(types[name]).lower()
        ok = allowed.get(formal.type_str)
        if ok is not None and f"tensor({elem})" not in ok:
            return f"does not take {elem} (input {formal.name})"
    return None
