"""Penalty terms added to a loss, as plain graph code.

Weight penalties act on parameters; activity penalties act on a code ``h`` (autoencoders):

- ``l2_penalty(ws, lam) = lam * sum ||w||^2`` (torch's ``weight_decay=wd`` is ``lam = wd / 2``);
- ``l1_penalty(ws, lam) = lam * sum |w|``;
- ``l1_activity(h) = mean over the batch of ||h||_1``;
- ``kl_sparsity(h, rho) = sum_j rho log(rho / h_bar_j) + (1 - rho) log((1 - rho) / (1 - h_bar_j))``
  with ``h_bar`` the batch-mean code; it needs codes in (0, 1) (sigmoid units).
"""
from __future__ import annotations

from typing import Iterable

from ..core.builder import Tensor
from ..core.errors import GraphError
from ..ops.elementwise import abs as abs_
from ..ops.elementwise import log
from ..ops.reduce import reduce_mean, reduce_sum


def _total(terms: list[Tensor], what: str) -> Tensor:
    if not terms:
        raise GraphError(f"{what}: no tensors given")
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def l2_penalty(weights: Iterable[Tensor], lam: float | Tensor) -> Tensor:
    """``lam * sum of squares`` over ``weights`` (a scalar)."""
    return _total([reduce_sum(w * w) for w in weights], "l2_penalty") * lam


def l1_penalty(weights: Iterable[Tensor], lam: float | Tensor) -> Tensor:
    """``lam * sum of absolute values`` over ``weights`` (a scalar)."""
    return _total([reduce_sum(abs_(w)) for w in weights], "l1_penalty") * lam


def l1_activity(h: Tensor) -> Tensor:
    """The batch mean of each example's L1 norm of the code ``h`` [N, k]."""
    return reduce_mean(reduce_sum(abs_(h), axes=-1))


def kl_sparsity(h: Tensor, rho: float) -> Tensor:
    """The KL divergence of Bernoulli(rho) from Bernoulli(h_bar_j), summed over units j."""
    if not 0.0 < rho < 1.0:
        raise GraphError(f"kl_sparsity target rho must be in (0, 1), got {rho}")
    h_bar = reduce_mean(h, axes=0)
    terms = rho * log(rho / h_bar) + (1.0 - rho) * log((1.0 - rho) / (1.0 - h_bar))
    return reduce_sum(terms)


def weights_of(params: dict[str, Tensor]) -> list[Tensor]:
    """The weight matrices among a model's parameters (names ending in ``.W``), which are what
    weight penalties usually cover (not biases or batch-norm scales)."""
    return [t for name, t in params.items() if name.endswith(".W")]
