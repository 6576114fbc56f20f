"""A VAE on raw counts with a negative-binomial decoder: the generative model of scVI.

Lopez, Regier, Cole, Jordan & Yosef (2018), "Deep generative modeling for single-cell transcriptomics",
Nat. Methods 15. The encoder reads ``log1p`` counts and gives a Gaussian posterior; the decoder gives each
cell a distribution over genes (a softmax), scaled by the cell's library size, which is observed (its total
count over the genes the model sees) rather than inferred; every gene has its own inverse dispersion
``theta``, learned. The objective is the NB negative log-likelihood of the counts plus ``beta`` times the KL
(Higgins et al. 2017). The paper's zero-inflated variant (ZINB) is not offered: Svensson (2020, "Droplet
scRNA-seq is not zero-inflated", Nat. Biotechnol. 38) found droplet UMI counts consistent with the NB, and
the count data vaebench can reach offline (``synthetic_counts``) are NB by construction, so no measurement
here could show it matters. Layer widths are those of the study's networks
(:mod:`vaebench.models.architecture`), so a comparison with ``beta_vae`` changes the likelihood only.
"""

from __future__ import annotations

import torch
from torch import nn

from vaebench.models.architecture import Architecture, decoder, encoder_head, encoder_trunk
from vaebench.models.base import LatentModel, LossTerms
from vaebench.models.likelihoods import nb_log_likelihood
from vaebench.models.vae import gaussian_kl


class NegativeBinomialVAE(LatentModel):
    """Counts in, Gaussian code out; ``loss`` takes raw counts, ``encode`` returns the posterior mean."""

    def __init__(self, n_genes: int, latent_dim: int, arch: Architecture, beta: float) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.beta = beta
        self.trunk, width = encoder_trunk(n_genes, arch)
        self.mu_head = encoder_head(width, latent_dim, arch)
        self.logvar_head = encoder_head(width, latent_dim, arch)
        self.decoder = decoder(latent_dim, n_genes, arch)  # gives the genes' logits
        self.log_theta = nn.Parameter(torch.zeros(n_genes))

    def posterior(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(torch.log1p(counts))
        return self.mu_head(h), self.logvar_head(h)

    def encode(self, counts: torch.Tensor) -> torch.Tensor:
        return self.posterior(counts)[0]

    def log_likelihood(self, counts: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(counts | z, library) per cell, summed over genes."""
        library = counts.sum(dim=1, keepdim=True).clamp(min=1.0)
        log_mu = torch.log_softmax(self.decoder(z), dim=1) + torch.log(library)
        return nb_log_likelihood(counts, log_mu, self.log_theta)

    def loss(self, counts: torch.Tensor) -> LossTerms:
        mu, logvar = self.posterior(counts)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        reconstruction = -self.log_likelihood(counts, z).mean()
        beta_kl = self.beta * gaussian_kl(mu, logvar).mean()
        return LossTerms(reconstruction + beta_kl, {"reconstruction": reconstruction, "beta_kl": beta_kl})
