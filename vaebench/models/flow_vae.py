"""The beta-VAE with a posterior refined by planar normalising flows: the seed study's "future work".

Rezende & Mohamed (2015), "Variational Inference with Normalizing Flows", ICML: a Gaussian sample ``z_0``
is pushed through K planar maps ``f(z) = z + u_hat tanh(w^T z + b)``, each with the log-determinant
``log |1 + u_hat^T (1 - tanh^2(w^T z + b)) w|``; ``u_hat`` is ``u`` moved along ``w`` so that
``w^T u_hat >= -1``, which keeps every map invertible (their appendix A.1). The flow parameters are
amortised: the encoder gives each cell its own ``u, w, b`` (as in van den Berg et al. 2018, "Sylvester
Normalizing Flows", UAI, whose planar baseline this is). The KL term has no closed form any more; it is the
single-sample Monte Carlo estimate ``log q_K(z_K) - log p(z_K)`` with
``log q_K(z_K) = log q_0(z_0) - sum_k log |det df_k / dz|``, weighted by beta (Higgins et al. 2017).
Reconstruction is the squared error of :class:`~vaebench.models.vae.BetaVAE`, so the two differ only in
the posterior.

``encode`` gives the deterministic code that is scored: the posterior mean ``mu`` pushed through the cell's
flows, i.e. the point of the flowed latent space the decoder reads that corresponds to the centre of
``q_0``. (The mean of ``q_K`` itself has no closed form; a sampled code would make scores depend on noise.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaebench.models.architecture import Architecture, decoder, encoder_head, encoder_trunk
from vaebench.models.base import LatentModel, LossTerms, squared_error

_LOG_2PI = math.log(2 * math.pi)
_EPS = 1e-8


def planar_step(
    z: torch.Tensor, u: torch.Tensor, w: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One planar map per cell (rows of ``u``, ``w``: cells x d; ``b``: cells x 1): the moved ``z`` and
    ``log |det|`` per cell."""
    wu = (w * u).sum(dim=1, keepdim=True)
    u_hat = u + (F.softplus(wu) - 1 - wu) * w / (w.pow(2).sum(dim=1, keepdim=True) + _EPS)
    h = torch.tanh((w * z).sum(dim=1, keepdim=True) + b)
    log_det = torch.log((1 + (1 - h.pow(2)) * (w * u_hat).sum(dim=1, keepdim=True)).abs() + _EPS)
    return z + u_hat * h, log_det.squeeze(1)


class PlanarFlowVAE(LatentModel):
    """Gaussian encoder, K amortised planar flows, MSE decoder; ``encode`` is the flowed posterior mean."""

    def __init__(self, n_genes: int, latent_dim: int, arch: Architecture, beta: float, flows: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.beta = beta
        self.flows = flows
        self.trunk, width = encoder_trunk(n_genes, arch)
        self.mu_head = encoder_head(width, latent_dim, arch)
        self.logvar_head = encoder_head(width, latent_dim, arch)
        self.flow_head = nn.Linear(width, flows * (2 * latent_dim + 1))
        self.decoder = decoder(latent_dim, n_genes, arch)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Base mean, base log-variance, and the flows' parameters (cells x K x (2d + 1))."""
        h = self.trunk(x)
        params = self.flow_head(h).view(x.shape[0], self.flows, 2 * self.latent_dim + 1)
        return self.mu_head(h), self.logvar_head(h), params

    def flow(self, z: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z`` through the K maps; also the summed log-determinants per cell."""
        d = self.latent_dim
        log_det = torch.zeros(z.shape[0], device=z.device, dtype=z.dtype)
        for k in range(self.flows):
            step = params[:, k]
            z, step_log_det = planar_step(z, step[:, :d], step[:, d : 2 * d], step[:, 2 * d :])
            log_det = log_det + step_log_det
        return z, log_det

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        mu, _, params = self.posterior(x)
        return self.flow(mu, params)[0]

    def loss(self, x: torch.Tensor) -> LossTerms:
        mu, logvar, params = self.posterior(x)
        noise = torch.randn_like(mu)
        z0 = mu + noise * torch.exp(0.5 * logvar)
        z, log_det = self.flow(z0, params)
        log_q0 = -0.5 * (noise.pow(2) + logvar + _LOG_2PI).sum(dim=1)
        log_prior = -0.5 * (z.pow(2) + _LOG_2PI).sum(dim=1)
        kl = log_q0 - log_det - log_prior
        reconstruction = squared_error(self.decoder(z), x)
        beta_kl = self.beta * kl.mean()
        return LossTerms(reconstruction + beta_kl, {"reconstruction": reconstruction, "beta_kl": beta_kl})
