"""Einstein summation (ONNX Einsum): ``einsum("bhqd,bhkd->bhqk", q, k)``.

The shape rule parses the equation (explicit ``->`` or implicit output, ``...`` for broadcast
leading dims). The gradient of operand i is again an einsum: the output's delta with the other
operands, summed into operand i's subscripts (then broadcast over letters only operand i has).
Diagonals (a letter repeated in one operand) and ellipses that broadcast between operands have
no gradient rule: an error says so."""
from __future__ import annotations

import string

import numpy as np

from ..core.builder import Tensor
from ..core.errors import GradError, ShapeError
from ..core.registry import REQUIRED, Call, OpDef, onnx_op, register
from ..core.types import TensorType, broadcast_shapes, dims_equal, shape_str
from .common import WIDEN_WRAPPING, same_dtype
from .shape import expand, shape_of, unsqueeze


def _parse(eq: str, ranks: list[int]) -> tuple[list[str], str]:
    """The operand terms and the output term with every ``...`` spelled as fresh capital
    letters (same letters in every term, right-aligned)."""
    eq = eq.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ShapeError(f"einsum equation {eq!r} has {len(terms)} operands, got {len(ranks)}")
    n_ell = 0
    for t, r in zip(terms, ranks):
        letters = len(t.replace("...", ""))
        if "..." in t:
            n_ell = max(n_ell, r - letters)
        elif letters != r:
            raise ShapeError(f"einsum term {t!r} has {letters} subscripts for a rank-{r} operand")
    ell = string.ascii_uppercase[:n_ell]
    out = [t.replace("...", ell[len(ell) - (r - len(t.replace('...', ''))):])
           for t, r in zip(terms, ranks)]
    if not arrow:
        once = sorted(c for c in set("".join(terms)) if c.isalpha()
                      and "".join(terms).count(c) == 1)
        rhs = ("..." if n_ell else "") + "".join(once)
    return out, rhs.replace("...", ell)


def _einsum_infer(types: list, attrs: dict) -> list[TensorType]:
    dt = same_dtype(types, "einsum operands")
    if any(t.shape is None for t in types):
        return [TensorType(dt, None)]
    terms, out = _parse(attrs["equation"], [len(t.shape) for t in types])
    dims: dict[str, object] = {}
    for term, t in zip(terms, types):
        for c, d in zip(term, t.shape):
            if c.isupper():  # ellipsis dims broadcast
                dims[c] = broadcast_shapes((dims.get(c, 1),), (d,))[0]
            elif c in dims and dims_equal(dims[c], d) is False:
                shapes = ", ".join(shape_str(t.shape) for t in types)
                raise ShapeError(f"einsum {attrs['equation']!r}: subscript {c} is "
                                 f"{dims[c]} and {d} ({shapes})")
            else:
                dims.setdefault(c, d)
    missing = [c for c in out if c not in dims]
    if missing:
        raise ShapeError(f"einsum {attrs['equation']!r}: output subscripts {missing} appear in "
                         "no operand")
    return [TensorType(dt, tuple(dims[c] for c in out))]


def _einsum_kernel(*xs: np.ndarray, equation: str) -> np.ndarray:
    return np.asarray(np.einsum(equation, *xs), xs[0].dtype)


def _einsum_vjp(b, c: Call, gys):
    xs, g = c.inputs, gys[0]
    terms, out = _parse(c.attrs["equation"], [x.type.rank for x in xs])
    grads = []
    for i, (x, term) in enumerate(zip(xs, terms)):
        if not x.dtype.is_float:
            grads.append(None)
            continue
        _check_differentiable(c.attrs["equation"], xs, terms, i)
        others = [t for j, t in enumerate(terms) if j != i]
        seen = set(out) | set("".join(others))
        kept = "".join(ch for ch in term if ch in seen)
        eq = ",".join([out] + others) + "->" + kept
        gi = einsum(eq, g, *[x2 for j, x2 in enumerate(xs) if j != i])
        if kept != term:  # letters only this operand has: their delta is broadcast
            gi = unsqueeze(gi, [k for k, ch in enumerate(term) if ch not in seen])
            gi = expand(gi, shape_of(x))
        grads.append(gi)
    return grads


def _check_differentiable(eq: str, xs: list, terms: list[str], i: int) -> None:
    term = terms[i]
    if len(set(term)) != len(term):
        raise GradError(f"einsum {eq!r}: no gradient rule for a repeated subscript (a "
                        f"diagonal) in operand {i}")
    for j, (t, x) in enumerate(zip(terms, xs)):
        for ch, d in zip(t, x.shape or ()):
            if ch.isupper() and ch in term and dims_equal(d, xs[i].shape[term.index(ch)]) \
                    is not True:
                raise GradError(f"einsum {eq!r}: no gradient rule where '...' broadcasts "
                                f"between operands ({shape_str(x.shape)} and "
                                f"{shape_str(xs[i].shape)})")


register(OpDef("einsum", _einsum_infer, (1, 64), kernel=_einsum_kernel, lower=onnx_op("Einsum"),
               widen=WIDEN_WRAPPING,
               vjp=_einsum_vjp, attrs={"equation": REQUIRED},
               doc="Einstein summation over the operands' subscripts."))


def einsum(equation: str, *xs: Tensor) -> Tensor:
    """``numpy.einsum(equation, *xs)`` as one op (ONNX Einsum)."""
    return xs[0].b.apply1("einsum", list(xs), equation=str(equation))
