"""The study's deep autoencoder: an MLP encoder to a 6-d code and a mirrored decoder, trained on MSE.

Hinton & Salakhutdinov (2006), "Reducing the dimensionality of data with neural networks", Science 313;
layer widths from the seed study's section 2.4.1 (see :mod:`vaebench.models.architecture`).
"""

from __future__ import annotations

import torch
from torch import nn

from vaebench.models.architecture import Architecture, decoder, encoder_head, encoder_trunk
from vaebench.models.base import LatentModel, LossTerms, squared_error


class Autoencoder(LatentModel):
    """Deterministic autoencoder; its loss is the per-cell squared reconstruction error."""

    def __init__(self, n_genes: int, latent_dim: int, arch: Architecture) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        trunk, width = encoder_trunk(n_genes, arch)
        head = encoder_head(width, latent_dim, arch)
        tail = [nn.ReLU()] if arch.latent_relu else []
        self.encoder = nn.Sequential(*trunk, *head, *tail)
        self.decoder = decoder(latent_dim, n_genes, arch)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def loss(self, x: torch.Tensor) -> LossTerms:
        reconstruction = squared_error(self.decoder(self.encoder(x)), x)
        return LossTerms(reconstruction, {"reconstruction": reconstruction})
