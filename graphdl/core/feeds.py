"""Checking feeds against a graph's inputs, binding symbolic dims to sizes."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .errors import FeedError
from .ir import Value
from .types import Sym, dim_str, shape_str


def check_feeds(inputs: Sequence[Value], feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The feeds as arrays of the inputs' dtypes; FeedError naming the input at fault for a
    missing or extra name, a wrong dtype, rank or size, or a symbol bound to two sizes."""
    names = [v.name for v in inputs]
    extra = sorted(set(feeds) - set(names))
    if extra:
        raise FeedError(f"unknown feed(s) {extra}; the graph's inputs are {names}")
    missing = [n for n in names if n not in feeds]
    if missing:
        raise FeedError(f"missing feed(s) {missing}; the graph's inputs are {names}")
    bound: dict[Sym, tuple[int, str]] = {}
    out = {}
    for v in inputs:
        arr = np.asarray(feeds[v.name])
        want = v.type
        if want.dtype.is_string and arr.dtype.kind in "US":
            arr = arr.astype(object)  # numpy's fixed-width str arrays hold the same strings
        if arr.dtype != want.dtype.np:
            raise FeedError(f"feed {v.name!r}: expected dtype {want.dtype.name}, got {arr.dtype}")
        if want.shape is not None:
            _check_shape(v.name, arr.shape, want.shape, bound)
        out[v.name] = arr
    return out


def _check_shape(name: str, got: tuple, want: tuple, bound: dict) -> None:
    if len(got) != len(want):
        raise FeedError(f"feed {name!r}: expected shape {shape_str(want)}, got {list(got)} "
                        f"(rank {len(got)} instead of {len(want)})")
    for axis, (g, w) in enumerate(zip(got, want)):
        if isinstance(w, int) and g != w:
            raise FeedError(f"feed {name!r}: expected shape {shape_str(want)}, got {list(got)} "
                            f"(axis {axis})")
        if isinstance(w, Sym) and len(w.factors) == 1 and w.coeff == 1 and w.factors[0][1] == 1:
            if w in bound and bound[w][0] != g:
                first = bound[w]
                raise FeedError(f"feed {name!r}: dim {dim_str(w)} is {g} on axis {axis}, but "
                                f"{first[0]} in feed {first[1]!r}")
            bound.setdefault(w, (g, name))
