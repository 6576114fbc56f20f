"""The negative-binomial log-likelihood of counts, stable and sparse-aware.

The negative binomial with mean ``mu`` and inverse dispersion ``theta`` (variance ``mu + mu^2 / theta``) is
the gamma-Poisson mixture Lopez et al. (2018, "Deep generative modeling for single-cell transcriptomics",
Nat. Methods 15) use for UMI counts. scvi-tools' ``log_nb_positive`` (scvi/distributions/
_negative_binomial.py) writes its log-density in the lgamma form

    theta log(theta / (theta + mu)) + x log(mu / (theta + mu)) + lgamma(x + theta) - lgamma(theta)
    - lgamma(x + 1).

With ``z = log(mu / theta)`` the first term is ``-theta softplus(z)`` and ``log(mu / (theta + mu))`` is
``logsigmoid(z)``, both stable for any ``z``. Every term but the first vanishes where ``x = 0``, and droplet
counts are mostly zeros (3-8 % non-zeros in a 10x PBMC library), so the first term is computed for every
count and the others only for the non-zero ones: on PBMC3k's 13,714 genes this keeps the likelihood's cost
near that of a squared error instead of several lgamma passes over the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nb_log_likelihood(x: torch.Tensor, log_mu: torch.Tensor, log_theta: torch.Tensor) -> torch.Tensor:
    """log NB(x; mu, theta) summed over genes, one value per cell: counts ``x`` and ``log_mu`` are
    cells x genes, ``log_theta`` is one value per gene."""
    theta = log_theta.exp()
    z = log_mu - log_theta
    zero_part = -(F.softplus(z) @ theta)  # the theta log(theta / (theta + mu)) of every count
    rows, cols = x.nonzero(as_tuple=True)
    counts, theta_c = x[rows, cols], theta[cols]
    count_part = (
        counts * F.logsigmoid(z[rows, cols])
        + torch.lgamma(counts + theta_c)
        - torch.lgamma(theta_c)
        - torch.lgamma(counts + 1)
    )
    return zero_part.index_add(0, rows, count_part)
