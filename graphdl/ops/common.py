"""Helpers shared by op definitions: type rules, attribute checks and unbroadcasting."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..core.errors import DTypeError, ShapeError
from ..core.types import DType, Shape, TensorType, broadcast_shapes, dims_equal, shape_str

if TYPE_CHECKING:
    from ..core.builder import Tensor


def same_dtype(types: Sequence[TensorType | None], what: str = "inputs") -> DType:
    """The common dtype of ``types``; DTypeError suggesting a cast when they differ."""
    ds = [t.dtype for t in types if t is not None]
    if any(d != ds[0] for d in ds):
        raise DTypeError(f"{what} have different dtypes {[d.name for d in ds]}; graphdl does "
                         "not promote implicitly, insert a cast")
    return ds[0]


def need_float(t: TensorType, what: str = "input") -> None:
    if not t.dtype.is_float:
        raise DTypeError(f"{what} must be floating point, got {t.dtype.name}")


def unary_infer(types: list, attrs: dict) -> list[TensorType]:
    """Elementwise unary rule on floats: same type out."""
    need_float(types[0])
    return [TensorType(types[0].dtype, types[0].shape)]


def broadcast_infer(types: list, attrs: dict, out_dtype: DType | None = None) -> list[TensorType]:
    """Elementwise n-ary rule: one dtype, broadcast shapes."""
    dt = same_dtype(types)
    shape: Shape | None = types[0].shape
    for t in types[1:]:
        shape = broadcast_shapes(shape, t.shape)
    return [TensorType(out_dtype or dt, shape)]


def norm_axis(axis: int, rank: int | None, what: str = "axis") -> int:
    """``axis`` in [0, rank); ShapeError when out of range."""
    if rank is None:
        return axis
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"{what} {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


def norm_axes(axes: Sequence[int] | None, rank: int | None) -> tuple[int, ...] | None:
    if axes is None:
        return None
    out = tuple(sorted(norm_axis(a, rank, "axis") for a in axes))
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {list(axes)}")
    return out


def unbroadcast(g: "Tensor", shape: Shape | None) -> "Tensor":
    """Sums ``g`` down to ``shape``: over leading axes it has extra, and over axes where
    ``shape`` is 1 and ``g`` is not provably 1 (summing a size-1 axis changes nothing).

    The sums are named by op (``reduce_sum``), as Tensor's operators name theirs: broadcasting
    and summing are each other's adjoints, so reduce.py's rules build on this module and this
    helper, below every op family, cannot import reduce.py back."""
    gs = g.shape
    if shape is None or gs is None:
        return g
    lead = len(gs) - len(shape)
    kept = tuple(lead + i for i, (gd, td) in enumerate(zip(gs[lead:], shape))
                 if td == 1 and dims_equal(gd, 1) is not True)
    if kept:
        g = g.b.apply1("reduce_sum", [g], axes=kept, keepdims=True)
    if lead > 0:
        g = g.b.apply1("reduce_sum", [g], axes=tuple(range(lead)), keepdims=False)
    return g


def int_vector(t: TensorType, what: str) -> None:
    """Checks that ``t`` is a 1-D int64 vector (a shape, pads, repeats computed in the graph)."""
    if t.dtype != DType.int64:
        raise DTypeError(f"{what} must be int64, got {t.dtype.name}")
    if t.shape is not None and len(t.shape) != 1:
        raise ShapeError(f"{what} must be a 1-D vector, got {shape_str(t.shape)}")


def int_tuple(x: Any, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(a) for a in x)
    except (TypeError, ValueError):
        raise ShapeError(f"{what} must be a sequence of ints, got {x!r}") from None


def describe(shape: Shape | None) -> str:
    return shape_str(shape)


# -- dtypes stock onnxruntime (1.32) has no CPU kernel for (OpDef.widen) ------------------------
# The ONNX standard allows int16, uint16, uint32 and uint64 in many ops that onnxruntime
# implements only for int32/int64 and floats (tests/test_onnx_dtype_coverage.py checks each
# entry against get_all_opkernel_def()). Export computes such an op in the wider dtype named
# here, with Casts around it: exact where every value of the narrow type is a value of the wide
# one, and for wrapping arithmetic (sums, products, powers) also where the wide type is only
# congruent modulo 2**bits (uint64 -> int64). None refuses the export by name: e.g. the order
# of uint64 values is not the order of their int64 bits.
_I16, _U16, _U32, _U64 = DType.int16, DType.uint16, DType.uint32, DType.uint64
#: order-preserving and exact: the small ints in int32
WIDEN_SMALL = {_I16: DType.int32, _U16: DType.int32}
#: wrapping arithmetic: exact modulo 2**bits
WIDEN_WRAPPING = {_I16: DType.int32, _U16: DType.int32, _U32: DType.int64, _U64: DType.int64}
#: order-based ops (max): uint64 has no exact wider type
WIDEN_ORDERED = {_I16: DType.int32, _U16: DType.int32, _U32: DType.int64, _U64: None}
#: no onnxruntime kernel and no exact fallback for any of the four
WIDEN_NONE = {_I16: None, _U16: None, _U32: None, _U64: None}
