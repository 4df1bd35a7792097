"""Shape ops: reshape, transpose, flatten, squeeze/unsqueeze, expand, shape and
constant_of_shape. Gather and concat live beside their adjoints (gather.py, slice.py).

Shapes computed inside a graph (``Shape -> Gather -> Concat -> Reshape``, as PyTorch's exporter
writes them) are followed symbolically through the ``known`` contents of small int64 vectors, so
an inferred shape stays ``[N,10]`` rather than unknown.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import REQUIRED, Call, OpDef, no_grad, onnx_op, register
from ..core.types import (DType, Dim, Shape, TensorType, broadcast_shapes, dim_div, dim_prod,
                     dims_equal, shape_str)
from .common import int_tuple, int_vector, norm_axis, unbroadcast

I64 = DType.int64


def shape_of(x: Tensor) -> Tensor:
    """x's shape as an int64 vector: a constant when static, else a ``shape`` node."""
    if x.shape is not None and all(isinstance(d, int) for d in x.shape):
        return x.b.const(np.asarray(x.shape, np.int64))
    return x.b.apply1("shape", [x])


# -- shape / constant_of_shape -----------------------------------------------------------------


def _shape_infer(types: list, attrs: dict) -> list[TensorType]:
    s = types[0].shape
    if s is None:
        return [TensorType(I64, (None,))]
    r = len(s)
    start = max(0, min(r, attrs["start"] + (r if attrs["start"] < 0 else 0)))
    end = r if attrs["end"] is None else max(0, min(r, attrs["end"] + (r if attrs["end"] < 0
                                                                       else 0)))
    dims = tuple(s[start:end])
    return [TensorType(I64, (len(dims),), dims)]


def _shape_kernel(x: np.ndarray, *, start: int, end: int | None) -> np.ndarray:
    return np.asarray(x.shape[start:end], np.int64)


def _shape_lower(ctx: Any, node: Any) -> None:
    """Shape's start/end attributes exist from opset 15; before that, Shape then Slice."""
    a = node.attrs
    if a["start"] == 0 and a["end"] is None:
        ctx.emit("Shape", node.inputs, node.outputs)
    elif ctx.opset >= 15:
        ctx.emit("Shape", node.inputs, node.outputs, start=a["start"], end=a["end"])
    else:
        (full,) = ctx.emit("Shape", node.inputs)
        end = np.iinfo(np.int64).max if a["end"] is None else a["end"]
        ctx.emit("Slice", [full, ctx.const(np.asarray([a["start"]], np.int64)),
                           ctx.const(np.asarray([end], np.int64))], node.outputs)


register(OpDef("shape", _shape_infer, (1, 1), kernel=_shape_kernel, lower=_shape_lower,
               vjp=no_grad, attrs={"start": 0, "end": None}, traits={"nondiff", "shape"}))


def shape(x: Tensor, start: int = 0, end: int | None = None) -> Tensor:
    return x.b.apply1("shape", [x], start=start, end=end)


def dim_size(x: Tensor, axis: int) -> Tensor:
    """The size of one axis of x as an int64 scalar."""
    s = shape(x, axis, axis + 1 if axis != -1 else None)
    return reshape(s, ())


def _cos_infer(types: list, attrs: dict) -> list[TensorType]:
    int_vector(types[0], "constant_of_shape's shape")
    value = np.asarray(attrs["value"])
    known = types[0].known
    if known is None:
        n = types[0].shape[0] if types[0].shape else None
        shape: Shape | None = None if not isinstance(n, int) else (None,) * n
    else:
        if any(isinstance(d, int) and d < 0 for d in known):
            raise ShapeError(f"constant_of_shape: negative dim in {list(known)}")
        shape = tuple(known)
    return [TensorType(DType.of(value.dtype), shape)]


def _cos_lower(ctx: Any, node: Any) -> None:
    ctx.emit("ConstantOfShape", node.inputs, node.outputs,
             value=np.asarray(node.attrs["value"]).reshape(1))


register(OpDef("constant_of_shape", _cos_infer, (1, 1),
               kernel=lambda s, *, value: np.full(tuple(s), np.asarray(value).reshape(()),
                                                  np.asarray(value).dtype),
               lower=_cos_lower, vjp=no_grad, attrs={"value": np.zeros((), np.float32)},
               traits={"nondiff"}, out_shape=lambda s, **_: tuple(int(d) for d in s)))


def constant_of_shape(shape_vec: Tensor, value: Any = 0.0, dtype: Any = "float32") -> Tensor:
    arr = np.asarray(value, DType.of(dtype).np).reshape(())
    return shape_vec.b.apply1("constant_of_shape", [shape_vec], value=arr)


def zeros_like(x: Tensor) -> Tensor:
    """Zeros of x's shape and dtype (symbolic dims allowed)."""
    return constant_of_shape(shape_of(x), 0, x.dtype)


# -- reshape / flatten -------------------------------------------------------------------------


def reshape_dims(src: Shape | None, target: Sequence[Dim], allowzero: int) -> Shape:
    """ONNX Reshape's rule: 0 copies the input dim (unless allowzero), one -1 is inferred."""
    dims = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if src is None or i >= len(src):
                raise ShapeError(f"reshape: 0 at position {i} has no input dim to copy")
            d = src[i]
        dims.append(d)
    if sum(1 for d in dims if d == -1) > 1:
        raise ShapeError(f"reshape: more than one -1 in {list(target)}")
    if any(isinstance(d, int) and d < -1 for d in dims):
        raise ShapeError(f"reshape: negative dim in {list(target)}")
    total = dim_prod(src) if src is not None else None
    if -1 in dims:
        rest = dim_prod([d for d in dims if d != -1])
        if total is not None and isinstance(total, int) and isinstance(rest, int) and rest and \
                total % rest:
            raise ShapeError(f"cannot reshape {shape_str(src)} to {list(target)}: "
                             f"{total} elements do not divide by {rest}")
        dims[dims.index(-1)] = dim_div(total, rest)
    elif dims_equal(total, dim_prod(dims)) is False:
        raise ShapeError(f"cannot reshape {shape_str(src)} ({total} elements) to "
                         f"{shape_str(tuple(dims))}")
    return tuple(dims)


def _reshape_infer(types: list, attrs: dict) -> list[TensorType]:
    x, s = types
    int_vector(s, "reshape's shape")
    if s.known is None:
        n = s.shape[0] if s.shape else None
        return [TensorType(x.dtype, None if not isinstance(n, int) else (None,) * n)]
    out = reshape_dims(x.shape, s.known, attrs["allowzero"])
    known = x.known if x.known is not None and len(out) <= 1 else None
    return [TensorType(x.dtype, out, known)]


def _reshape_kernel(x: np.ndarray, s: np.ndarray, *, allowzero: int) -> np.ndarray:
    dims = [x.shape[i] if (d == 0 and not allowzero) else int(d) for i, d in enumerate(s)]
    return x.reshape(dims)


def _reshape_vjp(b, c: Call, gys):
    return [reshape_like(gys[0], c.inputs[0]), None]


def _reshape_lower(ctx: Any, node: Any) -> None:
    """-> Reshape, with allowzero only where set and it matters (a target shape that may hold a
    0); Reshape has it from opset 14, and a known shape without zeros needs none."""
    known = node.inputs[1].type.known
    matters = node.attrs["allowzero"] and (known is None or 0 in list(np.ravel(known)))
    if matters:
        ctx.require_opset(14, node, "Reshape with allowzero=1")
    extra = {"allowzero": 1} if matters else {}
    ctx.emit("Reshape", node.inputs, node.outputs, **extra)


register(OpDef("reshape", _reshape_infer, (2, 2), kernel=_reshape_kernel,
               lower=_reshape_lower, vjp=_reshape_vjp, attrs={"allowzero": 0},
               traits={"shape", "moves_data"}))


def reshape(x: Tensor, shape_: Tensor | Sequence[int], allowzero: bool = False) -> Tensor:
    """``x`` with a new shape: an int64 vector tensor, or a sequence of ints (-1 inferred).
    A 0 copies x's dim there unless ``allowzero``, when it is an empty dim."""
    s = shape_ if isinstance(shape_, Tensor) else x.b.const(np.asarray(shape_, np.int64)
                                                            .reshape(-1))
    return x.b.apply1("reshape", [x, s], allowzero=int(bool(allowzero)))


def reshape_like(x: Tensor, like: Tensor) -> Tensor:
    """x in like's shape (allowzero: a 0 in a real shape is an empty dim, not a copy)."""
    return reshape(x, shape_of(like), allowzero=True)


def _flatten_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    if x.shape is None:
        return [TensorType(x.dtype, (None, None))]
    axis = _flatten_axis(attrs["axis"], len(x.shape))
    return [TensorType(x.dtype, (dim_prod(x.shape[:axis]), dim_prod(x.shape[axis:])))]


def _flatten_axis(axis: int, rank: int) -> int:
    """ONNX Flatten's axis lies in [-rank, rank]; a negative one counts from the end."""
    if not -rank <= axis <= rank:
        raise ShapeError(f"flatten axis {axis} is out of range [{-rank}, {rank}]")
    return axis + rank if axis < 0 else axis


def _flatten_kernel(x: np.ndarray, *, axis: int) -> np.ndarray:
    axis = _flatten_axis(axis, x.ndim)
    return x.reshape(int(np.prod(x.shape[:axis])), -1) if x.size else \
        x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))


register(OpDef("flatten", _flatten_infer, (1, 1), kernel=_flatten_kernel,
               lower=onnx_op("Flatten"), vjp=lambda b, c, g: [reshape_like(g[0], c.inputs[0])],
               attrs={"axis": 1}, traits={"shape", "moves_data"}))


def flatten(x: Tensor, axis: int = 1) -> Tensor:
    """ONNX Flatten: a 2-D tensor of dims [prod(shape[:axis]), prod(shape[axis:])]."""
    return x.b.apply1("flatten", [x], axis=axis)


# -- transpose ---------------------------------------------------------------------------------


def _perm(attrs: dict, rank: int | None) -> tuple[int, ...] | None:
    if attrs["perm"] is None:
        return None if rank is None else tuple(reversed(range(rank)))
    perm = int_tuple(attrs["perm"], "transpose perm")
    if rank is not None and sorted(perm) != list(range(rank)):
        raise ShapeError(f"transpose perm {list(perm)} is not a permutation of 0..{rank - 1}")
    return perm


def _transpose_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    perm = _perm(attrs, x.rank)
    if x.shape is None or perm is None:
        return [TensorType(x.dtype, None)]
    return [TensorType(x.dtype, tuple(x.shape[p] for p in perm))]


def _transpose_vjp(b, c: Call, gys):
    perm = _perm(c.attrs, c.inputs[0].type.rank)
    return [transpose(gys[0], tuple(int(i) for i in np.argsort(perm)))]


def _transpose_inline(w: Any, n: Any, args: list, target: str, donated: list) -> bool:
    """In a compiled plan, a 2-D transpose that swaps the axes: ``x.T``, no call."""
    if n.inputs[0].type.rank != 2 or n.attrs["perm"] not in (None, (1, 0), [1, 0]):
        return False
    w.emit(n, f"{target} = {args[0]}.T")
    return True


register(OpDef("transpose", _transpose_infer, (1, 1), inline=_transpose_inline,
               kernel=lambda x, *, perm: np.transpose(x, perm),
               lower=lambda ctx, n: ctx.emit("Transpose", n.inputs, n.outputs,
                                             perm=_perm(n.attrs, n.inputs[0].type.rank)),
               vjp=_transpose_vjp, attrs={"perm": None}, traits={"shape", "moves_data"}))


def transpose(x: Tensor, perm: Sequence[int] | None = None) -> Tensor:
    """Permutes axes (reverses them when ``perm`` is None)."""
    return x.b.apply1("transpose", [x], perm=None if perm is None else tuple(perm))


# -- squeeze / unsqueeze -----------------------------------------------------------------------


def _squeeze_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    if x.shape is None:
        return [TensorType(x.dtype, None)]
    if attrs["axes"] is None:
        if not all(isinstance(d, int) for d in x.shape):
            return [TensorType(x.dtype, None)]  # a symbolic dim may be 1 and go at run time
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = tuple(norm_axis(a, len(x.shape), "squeeze axis") for a in attrs["axes"])
        if len(set(axes)) != len(axes):
            raise ShapeError(f"squeeze: repeated axis in {list(attrs['axes'])}")
    for a in axes:
        if dims_equal(x.shape[a], 1) is False:
            raise ShapeError(f"squeeze: axis {a} of {shape_str(x.shape)} is not 1")
    out = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    known = x.known if len(out) <= 1 else None
    return [TensorType(x.dtype, out, known)]


def _squeeze_kernel(x: np.ndarray, *, axes: Any) -> np.ndarray:
    return np.squeeze(x, axis=None if axes is None else tuple(axes))


def _axes_lower(onnx_type: str):
    def lower(ctx: Any, node: Any) -> None:
        axes = node.attrs["axes"]
        ins = list(node.inputs) + ([] if axes is None else [ctx.const(np.asarray(axes, np.int64))])
        ctx.emit(onnx_type, ins, node.outputs)
    return lower


register(OpDef("squeeze", _squeeze_infer, (1, 1), kernel=_squeeze_kernel,
               lower=_axes_lower("Squeeze"),
               vjp=lambda b, c, g: [reshape_like(g[0], c.inputs[0])],
               attrs={"axes": None}, traits={"shape", "moves_data"}))


def _unsqueeze_axes(attrs: dict, rank: int) -> tuple[int, ...]:
    out_rank = rank + len(attrs["axes"])
    axes = tuple(sorted(norm_axis(a, out_rank, "unsqueeze axis") for a in attrs["axes"]))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"unsqueeze: repeated axis in {list(attrs['axes'])}")
    return axes


def _unsqueeze_infer(types: list, attrs: dict) -> list[TensorType]:
    x = types[0]
    if x.shape is None:
        return [TensorType(x.dtype, None)]
    axes = _unsqueeze_axes(attrs, len(x.shape))
    dims = list(x.shape)
    for a in axes:
        dims.insert(a, 1)
    known = x.known if len(dims) <= 1 else None
    return [TensorType(x.dtype, tuple(dims), known)]


def _unsqueeze_kernel(x: np.ndarray, *, axes: Any) -> np.ndarray:
    dims = list(np.shape(x))
    for a in _unsqueeze_axes({"axes": axes}, len(dims)):
        dims.insert(a, 1)
    return np.reshape(x, dims)  # a view, as np.expand_dims gives, at a fraction of its cost


register(OpDef("unsqueeze", _unsqueeze_infer, (1, 1), kernel=_unsqueeze_kernel,
               lower=_axes_lower("Unsqueeze"),
               vjp=lambda b, c, g: [reshape_like(g[0], c.inputs[0])],
               attrs={"axes": REQUIRED}, traits={"shape", "moves_data"}))


def squeeze(x: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    return x.b.apply1("squeeze", [x], axes=None if axes is None else tuple(axes))


def unsqueeze(x: Tensor, axes: Sequence[int]) -> Tensor:
    return x.b.apply1("unsqueeze", [x], axes=tuple(axes))


# -- expand ------------------------------------------------------------------------------------


def _expand_infer(types: list, attrs: dict) -> list[TensorType]:
    x, s = types
    int_vector(s, "expand's shape")
    if s.known is None:
        n = s.shape[0] if s.shape else None
        if x.shape is None or not isinstance(n, int):
            return [TensorType(x.dtype, None)]
        return [TensorType(x.dtype, (None,) * max(n, len(x.shape)))]
    return [TensorType(x.dtype, broadcast_shapes(x.shape, tuple(s.known)))]


def _expand_out_shape(x: np.ndarray, s: np.ndarray) -> tuple[int, ...]:
    """Expand's output shape (bidirectional broadcasting), computed without allocating."""
    return np.broadcast_shapes(x.shape, tuple(int(d) for d in s))


register(OpDef("expand", _expand_infer, (2, 2),
               kernel=lambda x, s: x * np.ones(tuple(s), x.dtype),
               lower=onnx_op("Expand"),
               vjp=lambda b, c, g: [unbroadcast(g[0], c.inputs[0].shape), None],
               traits={"shape"}, out_shape=_expand_out_shape))


def expand(x: Tensor, shape_: Tensor | Sequence[int]) -> Tensor:
    """ONNX Expand: broadcasts x against ``shape_`` (bidirectionally)."""
    s = shape_ if isinstance(shape_, Tensor) else x.b.const(np.asarray(shape_, np.int64))
    return x.b.apply1("expand", [x, s])


broadcast_to = expand


def expand_as(x: Tensor, like: Tensor) -> Tensor:
    """x broadcast to like's shape (a no-op when the shapes are already equal)."""
    if x.shape is not None and like.shape is not None and len(x.shape) == len(like.shape) and \
            all(dims_equal(a, c) for a, c in zip(x.shape, like.shape)):
        return x
    return expand(x, shape_of(like))
