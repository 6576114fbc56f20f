"""The beta-VSC: variational sparse coding with a spike-and-slab latent and a beta-weighted KL term.

Tonolini, Sand Jensen & Murray-Smith (2020), "Variational Sparse Coding", UAI (ICLR 2019 submission):
the encoder gives a Gaussian slab (mu, log sigma^2) and a spike probability gamma per latent dimension;
a sample is ``sigmoid(c * (eta + gamma - 1)) * (mu + sigma * eps)`` with ``eta ~ U(0, 1)``, a continuous
relaxation of the spike selection with steepness ``c``; the prior is spike-and-slab with spike probability
``alpha``. The seed study (section 2.3.1) scales the KL by beta. Layer widths from its section 2.4.3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vaebench.models.architecture import Architecture, decoder, encoder_head, encoder_trunk
from vaebench.models.base import LatentModel, LossTerms, squared_error

_EPS = 1e-6


def spike_and_slab_kl(
    mu: torch.Tensor, logvar: torch.Tensor, gamma: torch.Tensor, alpha: float
) -> torch.Tensor:
    """The VSC KL divergence (Tonolini et al., eq. 6), summed over latent dimensions, one value per cell."""
    gamma = gamma.clamp(_EPS, 1.0 - _EPS)
    slab = -0.5 * gamma * (1 + logvar - mu.pow(2) - logvar.exp())
    spike = (1 - gamma) * torch.log((1 - gamma) / (1 - alpha)) + gamma * torch.log(gamma / alpha)
    return (slab + spike).sum(dim=1)


class BetaVSC(LatentModel):
    """Spike-and-slab VAE; ``encode`` returns the slab mean ``mu``, the code the study scored."""

    def __init__(
        self,
        n_genes: int,
        latent_dim: int,
        arch: Architecture,
        beta: float,
        alpha: float = 0.5,
        c: float = 50.0,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.beta, self.alpha, self.c = beta, alpha, c
        self.trunk, width = encoder_trunk(n_genes, arch)
        self.mu_head = encoder_head(width, latent_dim, arch)
        self.logvar_head = encoder_head(width, latent_dim, arch)
        self.log_spike_head = encoder_head(width, latent_dim, arch)
        self.decoder = decoder(latent_dim, n_genes, arch)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Slab mean, slab log-variance and spike probability gamma (log gamma kept <= 0, as in the code)."""
        h = self.trunk(x)
        log_spike = -F.relu(-self.log_spike_head(h))
        return self.mu_head(h), self.logvar_head(h), log_spike.exp()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def loss(self, x: torch.Tensor) -> LossTerms:
        mu, logvar, gamma = self.posterior(x)
        slab = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        selection = torch.sigmoid(self.c * (torch.rand_like(mu) + gamma - 1))
        x_hat = self.decoder(selection * slab)
        kl = spike_and_slab_kl(mu, logvar, gamma, self.alpha)
        reconstruction = squared_error(x_hat, x)
        beta_kl = self.beta * kl.mean()
        return LossTerms(reconstruction + beta_kl, {"reconstruction": reconstruction, "beta_kl": beta_kl})
