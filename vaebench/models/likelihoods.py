"""Count likelihoods: the negative binomial and its zero-inflated form, in the numerically stable lgamma form.

The negative binomial with mean ``mu`` and inverse dispersion ``theta`` (variance ``mu + mu^2 / theta``) is
the gamma-Poisson mixture Lopez et al. (2018, "Deep generative modeling for single-cell transcriptomics",
Nat. Methods 15) use for UMI counts; the formulas follow scvi-tools' ``log_nb_positive`` and
``log_zinb_positive`` (scvi/distributions/_negative_binomial.py), written here with ``log mu`` as the input
so that a softmax decoder passes ``log_softmax + log library`` without a ``log(exp(.))`` round trip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-8


def log_nb(x: torch.Tensor, log_mu: torch.Tensor, log_theta: torch.Tensor) -> torch.Tensor:
    """Elementwise log NB(x; mu, theta) for counts ``x``, ``log_mu`` of the same shape and gene-wise
    ``log_theta`` broadcast over cells:

    ``theta log(theta / (theta + mu)) + x log(mu / (theta + mu)) + lgamma(x + theta) - lgamma(theta)
    - lgamma(x + 1)``.
    """
    theta = log_theta.exp()
    log_theta_mu = torch.logaddexp(log_theta, log_mu)
    return (
        theta * (log_theta - log_theta_mu)
        + x * (log_mu - log_theta_mu)
        + torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1)
    )


def log_zinb(
    x: torch.Tensor, log_mu: torch.Tensor, log_theta: torch.Tensor, dropout_logits: torch.Tensor
) -> torch.Tensor:
    """Elementwise log of the zero-inflated NB: with probability ``pi = sigmoid(dropout_logits)`` a
    structural zero, otherwise NB(mu, theta). A zero gets ``log(pi + (1 - pi) NB(0))``, a count ``c > 0``
    gets ``log(1 - pi) + log NB(c)``; both in log space (softplus, logaddexp)."""
    log_pi = -F.softplus(-dropout_logits)
    log_not_pi = -F.softplus(dropout_logits)
    theta = log_theta.exp()
    log_nb_zero = theta * (log_theta - torch.logaddexp(log_theta, log_mu))
    case_zero = torch.logaddexp(log_pi, log_not_pi + log_nb_zero)
    case_non_zero = log_not_pi + log_nb(x, log_mu, log_theta)
    return torch.where(x < _EPS, case_zero, case_non_zero)
