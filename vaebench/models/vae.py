"""The beta-VAE: a Gaussian encoder, the reparameterisation trick, and a beta-weighted KL term.

Kingma & Welling (2014), "Auto-Encoding Variational Bayes", ICLR; Higgins et al. (2017), "beta-VAE:
Learning Basic Visual Concepts with a Constrained Variational Framework", ICLR. Layer widths from the
seed study's section 2.4.2.
"""

from __future__ import annotations

import torch

from vaebench.models.architecture import Architecture, decoder, encoder_head, encoder_trunk
from vaebench.models.base import LatentModel, LossTerms, squared_error


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over latent dimensions, one value per cell."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)


class BetaVAE(LatentModel):
    """Gaussian VAE whose objective is ``squared error + beta * KL``; ``encode`` returns the mean."""

    def __init__(self, n_genes: int, latent_dim: int, arch: Architecture, beta: float) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.beta = beta
        self.trunk, width = encoder_trunk(n_genes, arch)
        self.mu_head = encoder_head(width, latent_dim, arch)
        self.logvar_head = encoder_head(width, latent_dim, arch)
        self.decoder = decoder(latent_dim, n_genes, arch)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.mu_head(h), self.logvar_head(h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def reconstruction(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction term of the batch (squared error, as the study)."""
        return squared_error(self.decoder(z), x)

    def loss(self, x: torch.Tensor) -> LossTerms:
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        reconstruction = self.reconstruction(x, z)
        beta_kl = self.beta * gaussian_kl(mu, logvar).mean()
        return LossTerms(reconstruction + beta_kl, {"reconstruction": reconstruction, "beta_kl": beta_kl})
