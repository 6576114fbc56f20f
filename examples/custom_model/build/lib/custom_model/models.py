"""A one-hidden-layer beta-VAE, written outside vaebench to show what a model of your own needs.

Kingma & Welling (2014), "Auto-Encoding Variational Bayes", ICLR; Higgins et al. (2017), "beta-VAE", ICLR.
It follows :class:`vaebench.models.LatentModelProtocol`: built from the gene count and the run's options,
``loss`` returns the objective with its named parts, ``encode`` the posterior mean.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from vaebench.models import LatentModel, LossTerms, ModelOptions


class TinyVAE(LatentModel):
    """Gaussian beta-VAE with one hidden layer on each side (an example of a model of your own)."""

    reference: ClassVar[str] = "Kingma & Welling 2014, ICLR; Higgins et al. 2017, ICLR"
    has_beta: ClassVar[bool] = (
        True  # it reads options.beta: suites sweep beta over it, reports plot against it
    )
    search_space: ClassVar[
        dict[str, tuple]
    ] = {  # what `vaebench tune --model tiny_vae` searches; `--set` fixes any of it
        "lr": ("log_float", 1e-4, 1e-2),
        "latent_dim": ("int", 2, 16),
        "beta": ("log_float", 0.1, 10.0),
    }

    def __init__(self, n_genes: int, options: ModelOptions) -> None:
        super().__init__()
        width = options.hidden[0] if options.hidden else 64
        self.latent_dim = options.latent_dim
        self.beta = options.beta
        self.hidden = nn.Sequential(nn.Linear(n_genes, width), nn.ReLU())
        self.mu = nn.Linear(width, options.latent_dim)
        self.logvar = nn.Linear(width, options.latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(options.latent_dim, width), nn.ReLU(), nn.Linear(width, n_genes)
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.mu(self.hidden(x))

    def loss(self, x: torch.Tensor) -> LossTerms:
        h = self.hidden(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        reconstruction = (self.decoder(z) - x).pow(2).sum(dim=1).mean()
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1).mean()
        beta_kl = self.beta * kl
        return LossTerms(reconstruction + beta_kl, {"reconstruction": reconstruction, "beta_kl": beta_kl})
