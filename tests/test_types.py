"""Symbolic dims and broadcasting: products, exact division, parsing, unknowns stay unknown."""
import pytest

from graphdl.core.errors import ShapeError
from graphdl.core.types import (Sym, broadcast_shapes, dim_div, dim_mul, dim_str, dims_equal,
                           parse_dim)

N, T = Sym.var("N"), Sym.var("T")


def test_products_and_exact_division_round_trip():
    n8 = dim_mul(N, 8)
    assert dim_str(n8) == "N*8"
    assert dim_div(n8, 8) == N
    assert dim_div(dim_mul(N, T), T) == N
    assert dim_str(dim_div(N, 2)) == "N/2"
    assert dim_div(12, 5) is None and dim_div(12, 4) == 3
    assert dim_mul(N, None) is None


def test_equality_is_three_valued():
    assert dims_equal(N, Sym.var("N")) is True
    assert dims_equal(3, 4) is False
    assert dims_equal(N, T) is None
    assert dims_equal(N, 5) is None


@pytest.mark.parametrize("text", ["N", "N*8", "N*T", "N/2", "batch_size*3"])
def test_parse_inverts_print(text):
    assert dim_str(parse_dim(text)) == text


def test_opaque_dim_param_stays_one_symbol():
    d = parse_dim("unk__12 + 3")
    assert isinstance(d, Sym) and dim_str(d) == "unk__12 + 3"


def test_broadcasting_rules():
    assert broadcast_shapes((N, 1, 3), (4, 1)) == (N, 4, 3)
    assert broadcast_shapes((N, 3), (3,)) == (N, 3)
    assert broadcast_shapes((N, 3), (T, 3)) == (None, 3)
    assert broadcast_shapes((N,), (5,)) == (5,)
    with pytest.raises(ShapeError, match=r"\[2,3\] with \[4,3\]"):
        broadcast_shapes((2, 3), (4, 3))
