"""The builder DSL: inputs, parameters, constants and ops applied to :class:`Tensor` handles.

Shapes are inferred as each op is applied, so a mistake raises at the user's own line. There is
no "current graph" global: every tensor knows its builder. VJP rules and passes build with the
same builder users do.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .errors import DTypeError, GraphError
from .ir import Graph, Node, Value
from .names import NameGen
from .registry import get_op
from .types import DType, TensorType, constant_key, tensor_type

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: The folders of graphdl's and passes' own code: frames there are never the user's.
LIBRARY_DIRS = tuple(os.path.join(_ROOT, d, "") for d in ("graphdl", "passes"))


def in_library(filename: str) -> bool:
    """Whether code from ``filename`` is graphdl's or passes' own (not the user's)."""
    return os.path.abspath(filename).startswith(LIBRARY_DIRS)


_USER_FILE: dict[str, str | None] = {}  # code filename -> printable path, None for ours


def _user_file(filename: str) -> str | None:
    if filename not in _USER_FILE:
        fn = os.path.abspath(filename)
        if in_library(fn):
            _USER_FILE[filename] = None
        else:
            _USER_FILE[filename] = filename if filename.startswith("<") else os.path.relpath(fn)
    return _USER_FILE[filename]


def user_location() -> str | None:
    """'file:line' of the innermost caller outside graphdl and passes; one string per place,
    shared by every node made there (a layer built in a loop makes many)."""
    f = sys._getframe(1)
    while f is not None:
        user = _user_file(f.f_code.co_filename)
        if user is not None:
            return sys.intern(f"{user}:{f.f_lineno}")
        f = f.f_back
    return None


def _where(op: str, loc: str | None) -> str:
    return op + (f" at {loc}" if loc else "")


#: Tensor methods whose rules live in a higher layer (the op families), registered there when
#: graphdl.ops loads: "getitem" (graphdl.ops.indexing).
TENSOR_METHODS: dict[str, Callable[..., "Tensor"]] = {}


class Tensor:
    """A handle on a value being built; supports ``+ - * / @ **``, unary minus, comparisons."""

    __slots__ = ("b", "value")
    __array_priority__ = 1000  # numpy scalars on the left defer to our operators

    def __init__(self, builder: "GraphBuilder", value: Value):
        self.b = builder
        self.value = value

    @property
    def type(self) -> TensorType:
        return self.value.type

    @property
    def shape(self) -> tuple | None:
        return self.value.type.shape

    @property
    def dtype(self) -> DType:
        return self.value.type.dtype

    @property
    def name(self) -> str:
        return self.value.name

    def __repr__(self) -> str:
        return f"Tensor(%{self.value.name}:{self.value.type})"

    def __hash__(self) -> int:
        return id(self.value)

    def binary(self, op: str, other: Any, swap: bool = False) -> "Tensor":
        """``op(self, other)`` (``op(other, self)`` with swap), a Python scalar or array taking
        this tensor's dtype: the one path every binary operator and op function goes through."""
        o = self.b.lift(other, like=self)
        return self.b.apply1(op, [o, self] if swap else [self, o])

    def __add__(self, o): return self.binary("add", o)
    def __radd__(self, o): return self.binary("add", o, swap=True)
    def __sub__(self, o): return self.binary("sub", o)
    def __rsub__(self, o): return self.binary("sub", o, swap=True)
    def __mul__(self, o): return self.binary("mul", o)
    def __rmul__(self, o): return self.binary("mul", o, swap=True)
    def __truediv__(self, o): return self.binary("div", o)
    def __rtruediv__(self, o): return self.binary("div", o, swap=True)
    def __pow__(self, o): return self.binary("pow", o)
    def __rpow__(self, o): return self.binary("pow", o, swap=True)
    def __matmul__(self, o): return self.binary("matmul", o)
    def __rmatmul__(self, o): return self.binary("matmul", o, swap=True)
    def __lt__(self, o): return self.binary("less", o)
    def __gt__(self, o): return self.binary("greater", o)
    def __le__(self, o): return self.binary("less_or_equal", o)
    def __ge__(self, o): return self.binary("greater_or_equal", o)
    def __neg__(self): return self.b.apply1("neg", [self])
    def __abs__(self): return self.b.apply1("abs", [self])

    def eq(self, o: Any) -> "Tensor":
        """Elementwise equality (``==`` stays Python identity so tensors can be dict keys)."""
        return self.binary("equal", o)

    def __getitem__(self, key: Any) -> "Tensor":
        """Basic indexing with ints and slices (``x[:, 1:3]``, ``x[-1]``), as ONNX Slice and
        Squeeze; steps may be negative. The rule lives with the slicing ops
        (graphdl.ops.indexing registers it in TENSOR_METHODS), above this layer."""
        return TENSOR_METHODS["getitem"](self, key)

    @property
    def T(self) -> "Tensor":
        return self.b.apply1("transpose", [self])


class GraphBuilder:
    """Builds a :class:`Graph` node by node, inferring types as it goes."""

    def __init__(self, name: str = "graph"):
        self.name = name
        self._inputs: list[Value] = []
        self._nodes: list[Node] = []
        self._inits: dict[Value, np.ndarray] = {}
        self.names = NameGen()  # every value and node name in the graph being built
        self.metadata: dict[str, str] = {}  # Graph.metadata of the graph built
        self._own: set[Value] = set()
        self._consts: dict[tuple, Tensor] = {}
        self.grad_of: str | None = None
        self.loc: str | None = None

    @classmethod
    def from_graph(cls, g: Graph) -> "GraphBuilder":
        """A builder holding all of ``g`` (same value objects), to extend it."""
        b = cls(g.name)
        b._inputs = list(g.inputs)
        b._nodes = list(g.nodes)
        b._inits = dict(g.initializers)
        b.names = NameGen({v.name for v in g.all_values()} | {n.name for n in g.nodes})
        b.metadata = dict(g.metadata)
        return b

    # -- names -------------------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        """A name not yet used in this graph."""
        return self.names.fresh(prefix)

    def reserve(self, names: Iterable[str]) -> None:
        """Keeps :meth:`fresh` from generating ``names``, which a replay will claim later."""
        self.names.reserve(names)

    def _claim(self, name: str) -> str:
        if not self.names.claim(name):
            raise GraphError(f"the name {name!r} is already used in graph {self.name!r}")
        return name

    def tensor(self, v: Value) -> Tensor:
        return Tensor(self, v)

    # -- leaves ------------------------------------------------------------------------------
    def input(self, name: str, shape: Sequence[Any], dtype: Any = "float32") -> Tensor:
        """A graph input; dims are ints, symbol names like 'N', or None."""
        v = Value(self._claim(name), tensor_type(dtype, shape))
        self._inputs.append(v)
        return Tensor(self, v)

    def param(self, name: str, value: Any, dtype: Any = None) -> Tensor:
        """A named parameter (an initializer) with its initial value."""
        arr = np.array(value, dtype=None if dtype is None else DType.of(dtype).np)
        if dtype is None and arr.dtype == np.float64 and not isinstance(value, np.ndarray):
            arr = arr.astype(np.float32)
        v = Value(self._claim(name), TensorType(DType.of(arr.dtype), tuple(arr.shape)))
        self._inits[v] = arr
        return Tensor(self, v)

    def const(self, value: Any, dtype: Any = None) -> Tensor:
        """A constant; small scalar constants are shared."""
        arr = np.asarray(value, dtype=None if dtype is None else DType.of(dtype).np)
        if dtype is None and arr.dtype == np.float64 and not isinstance(value, np.ndarray):
            arr = arr.astype(np.float32)
        key = constant_key(arr)
        if key is not None and key in self._consts:
            return self._consts[key]
        t = self.apply1("constant", [], value=arr)
        if key is not None:
            self._consts[key] = t
        return t

    def lift(self, x: Any, like: Tensor) -> Tensor:
        """``x`` as a tensor: tensors pass through, Python and NumPy scalars/arrays become
        constants of ``like``'s dtype (graphdl never promotes implicitly)."""
        if isinstance(x, Tensor):
            if x.b is not self:
                raise GraphError(f"tensor %{x.name} belongs to another graph builder")
            return x
        if isinstance(x, np.ndarray) and x.dtype != like.dtype.np:
            raise DTypeError(f"array of dtype {x.dtype} mixed with {like.dtype.name} tensor "
                             f"%{like.name}; cast it first")
        return self.const(np.asarray(x, dtype=like.dtype.np))

    # -- ops ---------------------------------------------------------------------------------
    def apply(self, op: str, inputs: Sequence[Tensor | None], names: Sequence[str] | None = None,
              **attrs: Any) -> list[Tensor]:
        """Applies a registered op; infers and checks the output types now."""
        opdef = get_op(op)
        loc = self.loc or user_location()
        vals = [None if t is None else self._own_value(t) for t in inputs]
        lo, hi = opdef.arity
        if not lo <= len(vals) <= hi or None in vals[:lo]:
            raise GraphError(f"{_where(op, loc)}: takes {lo}..{hi} inputs (the first {lo} "
                             f"required), got {[None if v is None else v.name for v in vals]}")
        try:
            full = opdef.check_attrs(attrs)
            in_types = [None if v is None else v.type for v in vals]
            opdef.check_dtypes(in_types)
            types = opdef.infer(in_types, full)
        except GraphError as e:
            shapes = ", ".join("_" if v is None else str(v.type) for v in vals)
            msg = str(e).removeprefix(f"{op}: ")  # the op is named once, with the location
            raise type(e)(f"{_where(op, loc)}: {msg} (inputs: {shapes})") from None
        if names is None:
            outs = tuple([Value(self.fresh(op + "_"), t) for t in types])
        else:
            outs = tuple([Value(self._claim(n), t) for n, t in zip(names, types)])
        self._own.update(outs)
        node_name = outs[0].name if outs else self.fresh(op)
        self._nodes.append(Node(op, tuple(vals), outs, full, node_name, loc, self.grad_of))
        return [Tensor(self, v) for v in outs]

    def _own_value(self, t: Any) -> Value:
        if not isinstance(t, Tensor):
            raise GraphError(f"expected a Tensor, got {type(t).__name__}")
        if t.b is not self:
            raise GraphError(f"tensor %{t.name} belongs to another graph builder")
        return t.value

    def apply1(self, op: str, inputs: Sequence[Tensor | None], **attrs: Any) -> Tensor:
        (out,) = self.apply(op, inputs, **attrs)
        return out

    @contextlib.contextmanager
    def grad_scope(self, forward: Node) -> Iterator[None]:
        """Tags every node built inside as part of the gradient of ``forward``."""
        prev, prev_loc = self.grad_of, self.loc
        self.grad_of, self.loc = forward.name, forward.loc
        try:
            yield
        finally:
            self.grad_of, self.loc = prev, prev_loc

    # -- result ------------------------------------------------------------------------------
    def build(self, outputs: Sequence[Tensor] | Mapping[str, Tensor]) -> Graph:
        """The graph with these outputs; a mapping names them (adding identities if needed)."""
        if isinstance(outputs, Mapping):
            items = list(outputs.items())
        else:
            items = [(None, t) for t in outputs]
        outs: list[Value] = []
        for name, t in items:
            v = self.lift(t, like=t).value
            if name is not None and v.name != name:
                v = self.rename(Tensor(self, v), name, taken=outs).value
            outs.append(v)
        return Graph(tuple(self._inputs), tuple(self._nodes), tuple(outs), dict(self._inits),
                     self.name, dict(self.metadata))

    def rename(self, t: Tensor, name: str, taken: Sequence[Value] = ()) -> Tensor:
        """``t`` under the name ``name``: renamed in place if this builder made it, else through
        an identity node (inputs, parameters and shared values keep their names)."""
        v = t.value
        if v.name == name:
            return t
        if v in self._own and v not in taken and not self.names.is_taken(name):
            self.names.release(v.name)
            for node in reversed(self._nodes):  # a node is named after its first output
                if node.outputs and node.outputs[0] is v and node.name == v.name:
                    node.name = name
                    break
            v.name = self._claim(name)
            return t
        (out,) = self.apply("identity", [t], names=[name])
        return out
