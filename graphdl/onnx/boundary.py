"""The graph inputs and outputs of an imported ONNX model, including sequence and optional ones.

graphdl's IR holds tensors only and its graphs are static, so what an ONNX graph takes or
returns as a sequence or an optional is resolved at import time, from facts the user gives
``from_onnx``: a sequence input ``x`` of length n (``sequence_lengths``) becomes the tensor
inputs ``x.0`` ... ``x.{n-1}``, gathered into a static sequence for the nodes that read ``x``; a
sequence output ``y`` becomes the tensor outputs ``y.0``, ``y.1``, ...; an optional input is
present (an input of its element's type) unless named in ``absent_inputs``, and then it is no
graph input but an :class:`Absent` value that OptionalHasElement reads as false. What was made
of each is recorded in the graph's metadata.
"""
from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any, Union

import onnx

from ..core.builder import Tensor
from ..core.errors import GraphError, OnnxError
from .checks import node_where
from ..core.types import DType, Dim, parse_dim

if TYPE_CHECKING:
    from .importer import Importer
    from .importers.sequence import StaticSequence

    Bound = Union[Tensor, StaticSequence, "Absent"]


@dataclasses.dataclass(frozen=True)
class Absent:
    """An optional value known at import time to hold nothing; ``where`` says what made it."""

    where: str


@dataclasses.dataclass
class Boundary:
    """The user's facts about structured graph inputs, and the tensor names the import gave to
    sequence inputs and outputs (for the graph's metadata)."""

    lengths: dict[str, int]
    absent: frozenset[str]
    seq_inputs: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    seq_outputs: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def metadata(self) -> dict[str, str]:
        meta = {}
        if self.seq_inputs:
            meta["graphdl.sequence_inputs"] = json.dumps(self.seq_inputs)
        if self.seq_outputs:
            meta["graphdl.sequence_outputs"] = json.dumps(self.seq_outputs)
        if self.absent:
            meta["graphdl.absent_inputs"] = json.dumps(sorted(self.absent))
        return meta


def kind(tp: onnx.TypeProto) -> str:
    """``tensor``, ``sequence``, ``optional``, ... (``sequence_type`` without the suffix)."""
    return (tp.WhichOneof("value") or "undefined").removesuffix("_type")


def check_options(imp: "Importer") -> None:
    """Each length names a sequence graph input (optional or not) and is a count; each absent
    input is an optional graph input."""
    bd, src = imp.boundary, imp.src
    types = {vi.name: vi.type for vi in imp.g.input if vi.name not in imp.static}
    for name, n in bd.lengths.items():
        tp = types.get(name)
        if tp is not None and kind(tp) == "optional":
            tp = tp.optional_type.elem_type
        if tp is None or kind(tp) != "sequence":
            raise OnnxError(f"{src}: sequence_lengths names {name!r}, which is no sequence graph "
                            f"input; those are {_sequence_inputs(types)}")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise OnnxError(f"{src}: sequence_lengths[{name!r}] must be a count (an int >= 0), "
                            f"not {n!r}")
    for name in bd.absent:
        if name not in types or kind(types[name]) != "optional":
            optional = sorted(k for k, t in types.items() if kind(t) == "optional")
            raise OnnxError(f"{src}: absent_inputs names {name!r}, which is no optional graph "
                            f"input; those are {optional}")


def _sequence_inputs(types: dict[str, onnx.TypeProto]) -> list[str]:
    def is_seq(tp: onnx.TypeProto) -> bool:
        if kind(tp) == "optional":
            tp = tp.optional_type.elem_type
        return kind(tp) == "sequence"
    return sorted(k for k, tp in types.items() if is_seq(tp))


def input_value(imp: "Importer", vi: onnx.ValueInfoProto) -> "Bound":
    """What graph input ``vi`` is bound to: a new tensor input, a static sequence of new tensor
    inputs, or an absent optional."""
    tp = vi.type
    if kind(tp) == "optional":
        if vi.name in imp.boundary.absent:
            return Absent(f"graph input {vi.name!r} (absent: named in absent_inputs)")
        tp = tp.optional_type.elem_type
    if kind(tp) == "sequence":
        return _sequence_input(imp, vi.name, tp.sequence_type.elem_type)
    return _tensor_input(imp, vi.name, tp)


def _sequence_input(imp: "Importer", name: str, elem: onnx.TypeProto) -> "StaticSequence":
    from .importers.sequence import StaticSequence

    if name not in imp.boundary.lengths:
        readers = [node_where(i, n) for i, n in enumerate(imp.g.node) if name in n.input]
        read = f", read by {readers[0]}" if readers else ""
        raise OnnxError(f"{imp.src}: graph input {name!r} is a sequence{read}; graphdl "
                        "resolves sequences at import time, so give its length: "
                        f"from_onnx(..., sequence_lengths={{{name!r}: n}}) (on the command "
                        f"line: --sequence-length {name}=N) makes it the tensor inputs "
                        f"{name}.0 ... {name}.(n-1)")
    if kind(elem) != "tensor":
        raise OnnxError(f"{imp.src}: graph input {name!r} is a sequence of {kind(elem)}s; "
                        "graphdl imports sequences of tensors only")
    dtype, _ = _tensor_type(f"graph input {name!r}", elem, imp.src)
    parts = [f"{name}.{k}" for k in range(imp.boundary.lengths[name])]
    for part in parts:
        if part in imp.onnx_names:
            raise OnnxError(f"{imp.src}: cannot name an element of sequence input {name!r} "
                            f"{part!r}: the model already has a value of that name")
    items = tuple(_tensor_input(imp, part, elem) for part in parts)
    imp.boundary.seq_inputs[name] = parts
    return StaticSequence(items, dtype, f"graph input {name!r}")


def _tensor_input(imp: "Importer", name: str, tp: onnx.TypeProto) -> Tensor:
    dtype, shape = _tensor_type(f"graph input {name!r}", tp, imp.src)
    t = imp.b.input(name, shape, dtype)
    imp.bound.add(t.value)
    return t


def _tensor_type(what: str, tp: onnx.TypeProto,
                 src: str) -> tuple[DType, tuple[Dim, ...] | None]:
    if kind(tp) != "tensor":
        raise OnnxError(f"{src}: {what} is a {kind(tp)}; graphdl imports tensors, sequences of "
                        "tensors and optionals of either")
    try:
        dtype = DType.from_onnx(tp.tensor_type.elem_type)
    except GraphError as e:
        raise OnnxError(f"{src}: {what}: {e}") from None
    if not tp.tensor_type.HasField("shape"):
        return dtype, None
    return dtype, tuple(_dim(d) for d in tp.tensor_type.shape.dim)


def _dim(d: Any) -> Dim:
    if d.HasField("dim_value"):
        return int(d.dim_value)
    if d.HasField("dim_param") and d.dim_param:
        return parse_dim(d.dim_param)
    return None


def add_output(imp: "Importer", vi: onnx.ValueInfoProto, outs: dict[str, Tensor]) -> None:
    """Graph output ``vi`` as one tensor, or as ``name.k`` tensors for a sequence; the kind and
    element type it declares (through any optional) must fit the value."""
    from .importers.sequence import StaticSequence

    value = imp.env.get(vi.name)
    declared = vi.type
    if kind(declared) == "optional":
        declared = declared.optional_type.elem_type
    what = f"graph output {vi.name!r}"
    if isinstance(value, Absent):
        raise OnnxError(f"{imp.src}: {what} is an absent optional (made by {value.where}); a "
                        "graphdl graph returns tensors, so its optional outputs must be present")
    if not isinstance(value, StaticSequence):
        if kind(declared) == "sequence":
            raise OnnxError(f"{imp.src}: {what} is declared a sequence but is a tensor")
        outs[vi.name] = imp.tensor(vi.name, what)
        return
    if kind(declared) not in ("sequence", "undefined"):
        raise OnnxError(f"{imp.src}: {what} is declared a {kind(declared)} but is a sequence "
                        f"(made by {value.where})")
    _check_elem_dtype(imp.src, what, declared, value)
    parts = [f"{vi.name}.{k}" for k in range(len(value.items))]
    for k, part in enumerate(parts):
        if part in imp.onnx_names or part in outs:
            raise OnnxError(f"{imp.src}: cannot name element {k} of sequence output "
                            f"{vi.name!r} {part!r}: the model already has a value of that name")
        outs[part] = value.tensor(k)
    imp.boundary.seq_outputs[vi.name] = parts


def _check_elem_dtype(src: str, what: str, declared: onnx.TypeProto,
                      value: "StaticSequence") -> None:
    if kind(declared) != "sequence":
        return
    elem = declared.sequence_type.elem_type
    code = elem.tensor_type.elem_type if kind(elem) == "tensor" else 0
    if code and DType.from_onnx(code) != value.dtype:
        raise OnnxError(f"{src}: {what} is declared a sequence of "
                        f"{DType.from_onnx(code).name} but holds {value.dtype.name} tensors "
                        f"(made by {value.where})")
