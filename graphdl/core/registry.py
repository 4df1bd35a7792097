"""The op registry: one record per op carrying every fact about it.

An :class:`OpDef` holds an op's shape/type rule (``infer``), NumPy ``kernel``, ONNX ``lower``-ing,
gradient rule (``vjp``) and traits, and the facts the engines, passes and export read: its
in-place form (``inplace``: the interpreter overwrites dying buffers with it, and elementwise
fusion merges exactly these ops), whether its kernel returns fresh arrays (``fresh``), how the
interpreter's plan inlines it (``inline``), the dtypes onnxruntime lacks kernels for
(``widen``), its carried training state (``carries``) and drawn masks (``mask``), and whether it
can be another op's activation epilogue (``epilogue``). A composite op may give a ``decompose``
rule instead of a kernel, a lowering or a VJP; engines and the backprop pass then use its
decomposition. ``register`` cross-checks the facts. The registry is graphdl's only global state.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from .errors import DTypeError, GraphError
from .types import DType, TensorType

if TYPE_CHECKING:
    from .builder import GraphBuilder, Tensor
    from .ir import Node

InferFn = Callable[[list[TensorType | None], dict[str, Any]], list[TensorType]]
KernelFn = Callable[..., "np.ndarray | tuple[np.ndarray, ...]"]
LowerFn = Callable[[Any, "Node"], None]
VjpFn = Callable[["GraphBuilder", "Call", list["Tensor | None"]], Sequence["Tensor | None"]]
DecomposeFn = Callable[["GraphBuilder", list["Tensor | None"], dict[str, Any]], Sequence["Tensor"]]

#: "strings": the op takes string tensors (every other op refuses them before its shape rule);
#: "reuses_inputs": the op's plan ``inline`` rule may write into any input buffer the plan
#: donates, of whatever type (a fused body checks each instruction's buffer itself);
#: "moves_data": the op only moves, reshapes or retypes its input 0 (a parameter read through
#: it is still a parameter)
TRAITS = frozenset({"elementwise", "commutative", "nondiff", "shape", "random", "composite",
                    "strings", "reuses_inputs", "moves_data"})
#: what an input slot of an op holds (OpDef.slots): trained parameters, carried or fixed state,
#: class labels
SLOT_ROLES = frozenset({"weight", "bias", "scale", "shift", "table", "initial state",
                        "running statistic", "labels"})


@dataclass(frozen=True)
class Call:
    """What a VJP rule sees of a forward node: its inputs and outputs as tensors, its attrs."""

    inputs: list["Tensor | None"]
    outputs: list["Tensor"]
    attrs: dict[str, Any]
    node: "Node"


class Epilogue(NamedTuple):
    """An activation that an op with an ``activation`` attribute (gemm, conv) can apply to its
    own fresh result in place (with the activation's ``inplace`` form): the ONNX op it lowers
    to after the producer's lowering, and its derivative written in terms of its output y
    (relu' = [y > 0]), so the fused node's VJP needs only the fused node's output."""

    onnx_op: str
    derivative: Callable[["Tensor"], "Tensor"]


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
    #: The ONNX op this op is one to one (same inputs, same attribute names): the lowering when
    #: ``lower`` is not given, and the importer of that ONNX op when no importer module claims
    #: it.
    onnx_type: str | None = None
    #: An in-place form ``fn(*arrays, out=buffer, **attrs)`` of the kernel (a NumPy ufunc or
    #: alike, also right without ``out``): the interpreter writes into an input whose buffer
    #: dies at the node, and ElementwiseFusion merges exactly the ops that have one.
    inplace: Callable[..., np.ndarray] | None = None
    #: The kernel always returns new arrays (never a view of, or the same object as, an input
    #: or an attribute): its outputs are the plan's own buffers, which in-place kernels may
    #: overwrite later. Every op with an ``inplace`` form is fresh.
    fresh: bool = False
    #: How the interpreter's compiled plan writes a node of this op as Python lines instead of
    #: a kernel call: ``inline(writer, node, args, targets, donated) -> bool`` (False: call the
    #: kernel after all). ``writer`` is graphdl.engine.interpreter.PlanWriter.
    inline: Callable[..., bool] | None = None
    #: dtype onnxruntime has no CPU kernel for -> the dtype export computes in instead, with
    #: Casts around the op (None: export refuses the op on that dtype by name).
    widen: Mapping[DType, DType | None] = field(default_factory=dict)
    #: Training state the op carries from step to step: (state input slot, the output slot
    #: holding its next value) pairs (batch norm's running mean and variance).
    carries: tuple[tuple[int, int], ...] = ()
    #: A keep-mask input that a trainer draws each step: (input slot, rate attribute name).
    mask: tuple[int, str] | None = None
    #: Set on activations that gemm and conv can fuse as their in-place epilogue.
    epilogue: Epilogue | None = None
    #: input slot -> what it holds (SLOT_ROLES): which initializers fine-tuning trains by
    #: default (weights, biases, scales, shifts, tables), which it never trains (initial states,
    #: running statistics), and which input carries class labels an engine checks.
    slots: Mapping[int, str] = field(default_factory=dict)
    #: The FLOPs of a node where the generic count (per output element, 2 per multiply-add of
    #: matrix products and convolutions) is wrong: ``flops(node) -> Dim`` (None: unknown).
    flops: Callable[["Node"], Any] | None = None

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
    """Adds an op; refuses a duplicate, one missing a rule, or facts that contradict each
    other (see :func:`check_facts`). An ``onnx_type`` without ``lower`` lowers to that op."""
    if op.name in _OPS:
        raise ValueError(f"op {op.name!r} is registered twice")
    if not set(op.traits) <= TRAITS:
        raise ValueError(f"op {op.name!r}: unknown traits {set(op.traits) - TRAITS}")
    if op.lower is None and op.onnx_type is not None:
        op = dataclasses.replace(op, lower=onnx_op(op.onnx_type))
    has_decomp = op.decompose is not None
    missing = [r for r, f in (("kernel", op.kernel), ("lower", op.lower), ("vjp", op.vjp))
               if f is None and not has_decomp]
    if missing:
        raise ValueError(f"op {op.name!r} lacks {missing} and has no decompose rule")
    check_facts(op)
    _OPS[op.name] = op
    return op


def check_facts(op: OpDef) -> None:
    """ValueError naming the op when its engine, export and training facts disagree."""
    def bad(why: str) -> ValueError:
        return ValueError(f"op {op.name!r}: {why}")

    if ("composite" in op.traits) != (op.decompose is not None):
        raise bad("the composite trait marks exactly the ops with a decompose rule")
    if op.inplace is not None:
        if op.kernel is None or not op.fresh:
            raise bad("an in-place form needs a kernel that returns fresh arrays (fresh=True)")
        if "elementwise" not in op.traits:
            raise bad("only elementwise ops have in-place forms (fusion merges them)")
    if op.epilogue is not None and (op.inplace is None or op.arity != (1, 1)):
        raise bad("an activation epilogue must be a one-input op with an in-place form")
    for dt, via in op.widen.items():
        if not isinstance(dt, DType) or not (via is None or isinstance(via, DType)):
            raise bad(f"widen maps DTypes to DTypes or None, got {dt!r}: {via!r}")
    slots = [s for s, _ in op.carries] + ([op.mask[0]] if op.mask else [])
    if any(not 0 <= s < op.arity[1] for s in slots):
        raise bad(f"carried or mask input slot out of its arity {op.arity}: {slots}")
    if not set(op.slots.values()) <= SLOT_ROLES or any(not 0 <= s < op.arity[1]
                                                        for s in op.slots):
        raise bad(f"slots must map input slots within {op.arity} to {sorted(SLOT_ROLES)}")
    if op.mask is not None and op.mask[1] not in op.attrs:
        raise bad(f"mask rate attribute {op.mask[1]!r} is not one of its attrs")


def unregister(name: str) -> None:
    """Removes an op (for a test or a notebook that defines an op again)."""
    _OPS.pop(name, None)


def epilogues() -> dict[str, OpDef]:
    """The activations gemm and conv can apply in place (op name -> OpDef)."""
    return {k: op for k, op in _OPS.items() if op.epilogue is not None}


def by_onnx_type(op_type: str) -> OpDef | None:
    """The op that is ONNX ``op_type`` one to one, if one declares it."""
    return next((op for op in _OPS.values() if op.onnx_type == op_type), None)


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
