"""Autoencoders: ``x_hat = decoder(encoder(x))``, with the
reconstruction loss and an optional sparsity penalty on the code as one differentiable loss."""
from __future__ import annotations

from typing import Callable

from ..core.builder import Tensor
from ..core.errors import GraphError
from ..ops.losses import mse_loss
from .layer import Layer
from .regularizers import kl_sparsity, l1_activity

PENALTIES = ("none", "l1", "kl")


class Autoencoder(Layer):
    """An encoder and a decoder; calling it returns the reconstruction."""

    kind = "autoencoder"

    def __init__(self, encoder: Callable[[Tensor], Tensor], decoder: Callable[[Tensor], Tensor]):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def __call__(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))

    def parameters(self, b) -> dict[str, Tensor]:
        out = {}
        for part in (self.encoder, self.decoder):
            if isinstance(part, Layer):
                out.update(part.parameters(b))
        return out

    def loss(self, x: Tensor, penalty: str = "none", eta: float = 1e-3,
             rho: float = 0.05) -> tuple[Tensor, Tensor, Tensor]:
        """(loss, code, reconstruction): ``mse(x_hat, x) + eta * Omega(h)`` where Omega is
        ``||h||_1`` ("l1"), the KL sparsity penalty with target ``rho`` ("kl") or 0."""
        if penalty not in PENALTIES:
            raise GraphError(f"unknown autoencoder penalty {penalty!r}; expected {PENALTIES}")
        h = self.encoder(x)
        x_hat = self.decoder(h)
        loss = mse_loss(x_hat, x)
        if penalty == "l1":
            loss = loss + l1_activity(h) * eta
        elif penalty == "kl":
            loss = loss + kl_sparsity(h, rho) * eta
        return loss, h, x_hat
