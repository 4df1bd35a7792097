"""Resource limits: declared allocations are checked against a byte budget before anything is
allocated, so a hostile model (a ``ConstantOfShape`` of 4 TiB, an external tensor claiming a
petabyte, dims whose product overflows int64) is refused instead of exhausting memory.

The budget is an argument (``max_bytes``) of every function that checks it; ``DEFAULT_MAX_BYTES``
is only its default. There is no environment switch and no other global state.
"""
from __future__ import annotations

from typing import Iterable

from .errors import GraphError
from .ir import Graph, Value
from .types import DType

#: The default budget for one tensor: 4 GiB.
DEFAULT_MAX_BYTES = 4 << 30
INT64_MAX = (1 << 63) - 1


class ResourceLimitError(GraphError):
    """A tensor whose declared size exceeds the byte budget, or whose element count cannot even
    be represented (int64 overflow)."""


def fmt_bytes(n: int) -> str:
    """``n`` bytes in the largest binary unit that keeps it >= 1 (e.g. '4.0 TiB')."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if size < 1024 or unit == "EiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    raise AssertionError("unreachable")


def element_count(dims: Iterable[int], what: str) -> int:
    """The product of ``dims`` (ints); ShapeError-like refusal of negative dims and of counts
    that overflow int64, which NumPy and ONNX Runtime would wrap or crash on."""
    count = 1
    dims = list(dims)
    for d in dims:
        if d < 0:
            raise ResourceLimitError(f"{what}: negative dim {d} in shape {dims}")
        count *= d
    if count > INT64_MAX:
        raise ResourceLimitError(f"{what}: shape {dims} has {count} elements, which overflows "
                                 "int64")
    return count


def check_bytes(dims: Iterable[int], itemsize: int, what: str,
                max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """The byte size of a tensor of ``dims``; ResourceLimitError when it exceeds ``max_bytes``."""
    dims = list(dims)
    size = element_count(dims, what) * itemsize
    if size > max_bytes:
        raise ResourceLimitError(f"{what}: shape {dims} needs {size} bytes ({fmt_bytes(size)}), "
                                 f"more than the limit of {max_bytes} ({fmt_bytes(max_bytes)}); "
                                 "pass a larger max_bytes to allow it")
    return size


def static_bytes(v: Value, max_bytes: int = DEFAULT_MAX_BYTES) -> int | None:
    """The byte size of ``v`` when its shape is fully static (checked), else None."""
    shape = v.type.shape
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return check_bytes(shape, DType.of(v.type.dtype).itemsize, f"value {v.name!r}",
                       max_bytes)


def check_graph(graph: Graph, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Refuses a graph any of whose statically shaped values (inputs, parameters, node outputs)
    would exceed ``max_bytes``; the error names the node that produces it."""
    for v in graph.inputs:
        static_bytes(v, max_bytes)
    for n in graph.nodes:
        for v in n.outputs:
            try:
                static_bytes(v, max_bytes)
            except ResourceLimitError as e:
                where = n.loc or f"node {n.name!r}"
                raise ResourceLimitError(f"{where} ({n.op}) output {e}") from None
