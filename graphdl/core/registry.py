"""The op registry: one record per op carrying all of its rules.

An :class:`OpDef` holds an op's shape/type rule (``infer``), NumPy ``kernel``, ONNX ``lower``-ing,
gradient rule (``vjp``) and traits. A composite op may give a ``decompose`` rule instead of a
kernel, a lowering or a VJP; engines and the backprop pass then use its decomposition. The
registry is graphdl's only global state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .errors import DTypeError, GraphError
from .types import TensorType

if TYPE_CHECKING:
    from .builder import GraphBuilder, Tensor
    from .ir import Node

InferFn = Callable[[list[TensorType | None], dict[str, Any]], list[TensorType]]
KernelFn = Callable[..., "np.ndarray | tuple[np.ndarray, ...]"]
LowerFn = Callable[[Any, "Node"], None]
VjpFn = Callable[["GraphBuilder", "Call", list["Tensor | None"]], Sequence["Tensor | None"]]
DecomposeFn = Callable[["GraphBuilder", list["Tensor | None"], dict[str, Any]], Sequence["Tensor"]]

#: "strings": the op takes string tensors (every other op refuses them before its shape rule)
TRAITS = frozenset({"elementwise", "commutative", "nondiff", "shape", "random", "composite",
                    "strings"})


@dataclass(frozen=True)
class Call:
    """What a VJP rule sees of a forward node: its inputs and outputs as tensors, its attrs."""

    inputs: list["Tensor | None"]
    outputs: list["Tensor"]
    attrs: dict[str, Any]
    node: "Node"


def no_grad(b: "GraphBuilder", call: Call, gys: list) -> list[None]:
    """The VJP of an op whose outputs do not depend smoothly on its inputs (comparisons, shape)."""
    return [None] * len(call.inputs)


@dataclass(frozen=True)
class OpDef:
    """Everything about one op, in one place.

    ``attrs`` maps each attribute to its default (``REQUIRED`` for none); ``arity`` is the
    (min, max) number of inputs, where inputs past min are optional and may be None.
    """

    name: str
    infer: InferFn
    arity: tuple[int, int]
    kernel: KernelFn | None = None
    lower: LowerFn | None = None
    vjp: VjpFn | None = None
    decompose: DecomposeFn | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    traits: frozenset[str] = frozenset()
    doc: str = ""
    #: For ops whose output size comes from run-time input *values* (constant_of_shape, expand,
    #: range, tile, pad): the output shape from the kernel's arguments, so an engine can refuse
    #: an allocation over its byte budget before making it.
    out_shape: Callable[..., tuple[int, ...]] | None = None
    #: The input positions a node's ONNX lowering reads (default: all), so export can drop an
    #: output that only a lowering which ignores it consumes (max pooling's indices).
    lower_reads: Callable[[Any], Sequence[int]] | None = None
    #: For multi-output ops: a cheaper kernel returning only output 0, which an engine calls
    #: when nothing reads the other outputs (max pooling without its indices).
    kernel_first: KernelFn | None = None

    def check_dtypes(self, types: Sequence[TensorType | None]) -> None:
        """DTypeError when a string tensor reaches an op without the "strings" trait."""
        if "strings" in self.traits:
            return
        for i, t in enumerate(types):
            if t is not None and t.dtype.is_string:
                raise DTypeError(f"{self.name}: input {i} has dtype string ({t}); "
                                 f"{self.name} does not take strings")

    def check_attrs(self, given: dict[str, Any]) -> dict[str, Any]:
        """The op's attrs with defaults filled in; GraphError on unknown or missing ones."""
        unknown = set(given) - set(self.attrs)
        if unknown:
            raise GraphError(f"op {self.name} has no attribute(s) {sorted(unknown)}; "
                             f"it takes {sorted(self.attrs)}")
        out = {}
        for k, default in self.attrs.items():
            if k in given and given[k] is not None:
                out[k] = given[k]
            elif default is REQUIRED:
                raise GraphError(f"op {self.name} needs attribute {k!r}")
            else:
                out[k] = default
        return out


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

_OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    """Adds an op; refuses a duplicate or one missing a rule."""
    if op.name in _OPS:
        raise ValueError(f"op {op.name!r} is registered twice")
    if not set(op.traits) <= TRAITS:
        raise ValueError(f"op {op.name!r}: unknown traits {set(op.traits) - TRAITS}")
    has_decomp = op.decompose is not None
    missing = [r for r, f in (("kernel", op.kernel), ("lower", op.lower), ("vjp", op.vjp))
               if f is None and not has_decomp]
    if missing:
        raise ValueError(f"op {op.name!r} lacks {missing} and has no decompose rule")
    _OPS[op.name] = op
    return op


def get_op(name: str) -> OpDef:
    try:
        return _OPS[name]
    except KeyError:
        raise GraphError(f"unknown op {name!r}") from None


def all_ops() -> dict[str, OpDef]:
    """A copy of the registry (name -> OpDef)."""
    return dict(_OPS)


def onnx_op(op_type: str, **rename: str) -> LowerFn:
    """A lowering that emits one ONNX node of ``op_type``; ``rename`` maps our attr names to
    ONNX names (an attr not named there keeps its name)."""

    def lower(ctx: Any, node: "Node") -> None:
        attrs = {rename.get(k, k): v for k, v in node.attrs.items()}
        ctx.emit(op_type, node.inputs, node.outputs, **attrs)

    lower.__doc__ = f"-> ONNX {op_type}"
    return lower
