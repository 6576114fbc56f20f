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

from vaebench.models.architecture import Architecture
from vaebench.models.likelihoods import nb_log_likelihood
from vaebench.models.vae import BetaVAE


class NegativeBinomialVAE(BetaVAE):
    """Counts in, Gaussian code out; ``loss`` takes raw counts, ``encode`` returns the posterior mean.

    The beta-VAE's encoder and decoder, read differently: the encoder sees log1p counts, the decoder gives
    the genes' logits, and the reconstruction is the negative-binomial likelihood of the counts.
    """

    def __init__(self, n_genes: int, latent_dim: int, arch: Architecture, beta: float) -> None:
        super().__init__(n_genes, latent_dim, arch, beta)
        self.log_theta = nn.Parameter(torch.zeros(n_genes))

    def posterior(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return super().posterior(torch.log1p(counts))

    def log_likelihood(self, counts: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(counts | z, library) per cell, summed over genes."""
        library = counts.sum(dim=1, keepdim=True).clamp(min=1.0)
        log_mu = torch.log_softmax(self.decoder(z), dim=1) + torch.log(library)
        return nb_log_likelihood(counts, log_mu, self.log_theta)

    def reconstruction(self, counts: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return -self.log_likelihood(counts, z).mean()
