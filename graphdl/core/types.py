"""Element types, symbolic dims and tensor types.

A dim is an ``int``, a :class:`Sym` (a monomial ``coeff * N**a * T**b ...`` over named symbols,
enough for batch dims, flatten, ``Reshape`` with ``-1`` and batch-folded layouts) or ``None``
(unknown). Two dims that cannot be proved equal or different compare as unknown, never as equal.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Union

import numpy as np
from onnx import TensorProto

from .errors import DTypeError, ShapeError


#: The bytes a string element is counted as by memory budgets (graphdl/core/limits.py).
STRING_ITEM_BYTES = 64


class DType(enum.Enum):
    """The element types graphdl knows; value = (short name, numpy dtype, ONNX code)."""

    float32 = ("f32", np.float32, TensorProto.FLOAT)
    float64 = ("f64", np.float64, TensorProto.DOUBLE)
    float16 = ("f16", np.float16, TensorProto.FLOAT16)
    int64 = ("i64", np.int64, TensorProto.INT64)
    int32 = ("i32", np.int32, TensorProto.INT32)
    int16 = ("i16", np.int16, TensorProto.INT16)
    int8 = ("i8", np.int8, TensorProto.INT8)
    uint64 = ("u64", np.uint64, TensorProto.UINT64)
    uint32 = ("u32", np.uint32, TensorProto.UINT32)
    uint16 = ("u16", np.uint16, TensorProto.UINT16)
    uint8 = ("u8", np.uint8, TensorProto.UINT8)
    bool = ("bool", np.bool_, TensorProto.BOOL)
    #: Python str objects in a numpy object array (ONNX STRING); only a few ops take them
    string = ("str", np.object_, TensorProto.STRING)

    @property
    def short(self) -> str:
        return self.value[0]

    @property
    def np(self) -> np.dtype:
        return np.dtype(self.value[1])

    @property
    def onnx(self) -> int:
        return self.value[2]

    @property
    def is_float(self) -> bool:
        return self in (DType.float32, DType.float64, DType.float16)

    @property
    def is_string(self) -> bool:
        return self is DType.string

    @property
    def itemsize(self) -> int:
        """Bytes per element for memory budgets: numpy's itemsize, or for strings an estimate
        (the 8-byte object pointer plus a short Python str, ~56 bytes)."""
        return STRING_ITEM_BYTES if self is DType.string else self.np.itemsize

    @staticmethod
    def of(x: object) -> "DType":
        """The DType named by a DType, a string ('float32', 'f32'), a numpy dtype or an array."""
        if isinstance(x, DType):
            return x
        if isinstance(x, str):
            for d in DType:
                if x in (d.name, d.short):
                    return d
            raise DTypeError(f"unknown dtype {x!r}; expected one of {[d.name for d in DType]}")
        try:
            npd = np.dtype(x if isinstance(x, type) else getattr(x, "dtype", x))
        except TypeError:
            raise DTypeError(f"not a dtype: {x!r}") from None
        if npd.kind in "OUS":  # str/bytes arrays and object arrays of str are strings
            if npd.kind == "O" and isinstance(x, np.ndarray) and \
                    not all(isinstance(s, (str, bytes)) for s in x.flat):
                raise DTypeError("an object array is a string tensor only if every element is "
                                 "a str")
            return DType.string
        for d in DType:
            if d.np == npd:
                return d
        raise DTypeError(f"unsupported numpy dtype {npd}; expected one of "
                         f"{[d.name for d in DType]}")

    @staticmethod
    def from_onnx(code: int) -> "DType":
        for d in DType:
            if d.onnx == code:
                return d
        name = TensorProto.DataType.Name(code) if code in TensorProto.DataType.values() else code
        raise DTypeError(f"unsupported ONNX element type {name}")


class Sym:
    """A symbolic dim: ``coeff * prod(name ** power)``, e.g. ``N``, ``N*8``, ``N*T``, ``N/2``."""

    __slots__ = ("coeff", "factors")

    def __init__(self, coeff: Fraction, factors: tuple[tuple[str, int], ...]):
        self.coeff = Fraction(coeff)
        self.factors = tuple(sorted((n, p) for n, p in factors if p != 0))

    @staticmethod
    def var(name: str) -> "Sym":
        return Sym(Fraction(1), ((name, 1),))

    def _combine(self, other: "Sym", sign: int) -> Dim:
        powers = dict(self.factors)
        for n, p in other.factors:
            powers[n] = powers.get(n, 0) + sign * p
        coeff = self.coeff * other.coeff if sign > 0 else self.coeff / other.coeff
        return _normal(coeff, tuple(powers.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sym) and (self.coeff, self.factors) == (other.coeff, other.factors)

    def __hash__(self) -> int:
        return hash((self.coeff, self.factors))

    def __repr__(self) -> str:
        return f"Sym({self})"

    def __str__(self) -> str:
        num = [n if p == 1 else f"{n}^{p}" for n, p in self.factors if p > 0]
        den = [n if p == -1 else f"{n}^{-p}" for n, p in self.factors if p < 0]
        if self.coeff.numerator != 1:
            num.append(str(self.coeff.numerator))
        if self.coeff.denominator != 1:
            den.append(str(self.coeff.denominator))
        text = "*".join(num) or "1"
        return text + "".join("/" + d for d in den)


Dim = Union[int, Sym, None]


def _normal(coeff: Fraction, factors: tuple[tuple[str, int], ...]) -> Dim:
    s = Sym(coeff, factors)
    if not s.factors:
        return int(coeff) if coeff.denominator == 1 else None
    return s


def _as_sym(d: int | Sym) -> Sym:
    return d if isinstance(d, Sym) else Sym(Fraction(d), ())


def dim_mul(a: Dim, b: Dim) -> Dim:
    """The product of two dims (unknown if either is)."""
    if a is None or b is None:
        return None
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if a == 0 or b == 0:
        return 0
    return _as_sym(a)._combine(_as_sym(b), +1)


def dim_div(a: Dim, b: Dim) -> Dim:
    """The exact quotient ``a / b``: unknown if either is unknown or ints do not divide."""
    if a is None or b is None or b == 0:
        return None
    if isinstance(a, int) and isinstance(b, int):
        return a // b if a % b == 0 else None
    return _as_sym(a)._combine(_as_sym(b), -1)


def dim_prod(dims: tuple[Dim, ...] | list[Dim]) -> Dim:
    out: Dim = 1
    for d in dims:
        out = dim_mul(out, d)
    return out


def dims_equal(a: Dim, b: Dim) -> bool | None:
    """True or False where provable, None where it is unknown."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, Sym) and isinstance(b, Sym) and a == b:
        return True
    return None


def constant_key(arr: np.ndarray) -> tuple | None:
    """The key under which equal small constants are shared (one node or initializer for
    every use of, say, the scalar 0.5): dtype, shape and bytes; None for arrays over 16
    elements, which are not deduplicated."""
    return (arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 16 else None


def same_type(a: "TensorType", b: "TensorType") -> bool:
    """Provably the same dtype and shape (every dim provably equal)."""
    if a.dtype != b.dtype or a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return False
    return all(dims_equal(x, y) is True for x, y in zip(a.shape, b.shape))


def dim_str(d: Dim) -> str:
    return "?" if d is None else str(d)


_DIM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\s*[*/]\s*([A-Za-z_][A-Za-z0-9_]*|\d+))*$")


def parse_dim(text: str) -> Dim:
    """Reads a dim as printed by :func:`dim_str`; any other string becomes an opaque symbol."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if not text or text == "?":
        return None
    if not _DIM_RE.match(text) or "^" in text:
        return Sym.var(text)
    tokens = re.findall(r"[*/]|[A-Za-z_][A-Za-z0-9_]*|\d+", text)
    out: Dim = 1
    op = "*"
    for tok in tokens:
        if tok in "*/":
            op = tok
            continue
        d: Dim = int(tok) if tok.isdigit() else Sym.var(tok)
        out = dim_mul(out, d) if op == "*" else dim_div(out, d)
    return out


def as_dim(d: object) -> Dim:
    """A dim from what a user writes: an int, a symbol name like 'N', or None."""
    if d is None or isinstance(d, Sym):
        return d
    if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
        if d < 0:
            raise ShapeError(f"negative dim {d} in a shape")
        return int(d)
    if isinstance(d, str):
        return parse_dim(d)
    raise ShapeError(f"a dim must be an int, a symbol name or None, got {d!r}")


Shape = tuple[Dim, ...]


def shape_str(shape: Shape | None) -> str:
    if shape is None:
        return "[*]"
    return "[" + ",".join(dim_str(d) for d in shape) + "]"


@dataclass(frozen=True, slots=True)
class TensorType:
    """dtype and shape (None: unknown rank) of a value.

    ``known`` carries the symbolic contents of a small int64 vector (a shape computed in the
    graph: ``Shape -> Gather -> Concat -> Reshape``) so shape inference can follow it exactly.
    """

    dtype: DType
    shape: Shape | None
    known: tuple[Dim, ...] | None = field(default=None, compare=False)

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    def __str__(self) -> str:
        return f"{self.dtype.short}{shape_str(self.shape)}"


def tensor_type(dtype: object, shape: object) -> TensorType:
    """A TensorType from user-level values: dtype name/object, shape of ints/names/None."""
    dims = None if shape is None else tuple(as_dim(d) for d in shape)
    return TensorType(DType.of(dtype), dims)


def broadcast_shapes(a: Shape | None, b: Shape | None) -> Shape | None:
    """Numpy/ONNX multidirectional broadcasting; raises ShapeError on a provable mismatch."""
    if a is None or b is None:
        return None
    if a == b:
        return a
    n = max(len(a), len(b))
    a2 = (1,) * (n - len(a)) + tuple(a)
    b2 = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a2, b2):
        if x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        elif dims_equal(x, y):
            out.append(x)
        elif isinstance(x, int) and isinstance(y, int):
            raise ShapeError(f"cannot broadcast {shape_str(a)} with {shape_str(b)}")
        elif isinstance(x, int) or isinstance(y, int):
            out.append(x if isinstance(x, int) else y)
        else:
            out.append(None)
    return tuple(out)
