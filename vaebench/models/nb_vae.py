"""A VAE on raw counts with a negative-binomial decoder: the generative model of scVI.

Lopez, Regier, Cole, Jordan & Yosef (2018), "Deep generative modeling for single-cell transcriptomics",
Nat. Methods 15. The encoder reads ``log1p`` counts and gives a Gaussian posterior; the decoder gives each
cell a distribution over genes (a softmax), scaled by the cell's library size, which is observed (its total
count over the genes the model sees) rather than inferred; every gene has its own inverse dispersion
``theta``, learned. The objective is the NB negative log-likelihood of the counts plus ``beta`` times the KL
(Higgins et al. 2017). With ``zero_inflated`` the decoder also gives each count a probability of being a
structural zero (the ZINB of the same paper). Layer widths are those of the study's networks
(:mod:`vaebench.models.architecture`), so a comparison with ``beta_vae`` changes the likelihood only.
"""

from __future__ import annotations

import torch
from torch import nn

from vaebench.models.architecture import Architecture, decoder, encoder_head, encoder_trunk
from vaebench.models.base import LatentModel, LossTerms
from vaebench.models.likelihoods import log_nb, log_zinb
from vaebench.models.vae import gaussian_kl


class NegativeBinomialVAE(LatentModel):
    """Counts in, Gaussian code out; ``loss`` takes raw counts, ``encode`` returns the posterior mean."""

    def __init__(
        self, n_genes: int, latent_dim: int, arch: Architecture, beta: float, zero_inflated: bool = False
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.beta = beta
        self.trunk, width = encoder_trunk(n_genes, arch)
        self.mu_head = encoder_head(width, latent_dim, arch)
        self.logvar_head = encoder_head(width, latent_dim, arch)
        self.decoder = decoder(latent_dim, n_genes, arch)  # its last layer gives the genes' logits
        self.dropout_head = nn.Linear(self.decoder[-1].in_features, n_genes) if zero_inflated else None
        self.log_theta = nn.Parameter(torch.zeros(n_genes))

    def posterior(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(torch.log1p(counts))
        return self.mu_head(h), self.logvar_head(h)

    def encode(self, counts: torch.Tensor) -> torch.Tensor:
        return self.posterior(counts)[0]

    def log_likelihood(self, counts: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(counts | z, library) per cell, summed over genes."""
        hidden = self.decoder[:-1](z)
        library = counts.sum(dim=1, keepdim=True).clamp(min=1.0)
        log_mu = torch.log_softmax(self.decoder[-1](hidden), dim=1) + torch.log(library)
        if self.dropout_head is None:
            return log_nb(counts, log_mu, self.log_theta).sum(dim=1)
        return log_zinb(counts, log_mu, self.log_theta, self.dropout_head(hidden)).sum(dim=1)

    def loss(self, counts: torch.Tensor) -> LossTerms:
        mu, logvar = self.posterior(counts)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        reconstruction = -self.log_likelihood(counts, z).mean()
        beta_kl = self.beta * gaussian_kl(mu, logvar).mean()
        return LossTerms(reconstruction + beta_kl, {"reconstruction": reconstruction, "beta_kl": beta_kl})
