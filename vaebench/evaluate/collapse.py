"""Posterior collapse measured: active units and the KL divergence of each latent dimension.

Burda, Grosse & Salakhutdinov (2016), "Importance Weighted Autoencoders", ICLR, section 5.2: a latent
dimension ``u`` is *active* when the variance over cells of its posterior mean, ``Cov_x(E_{q(u|x)}[u])``,
exceeds 0.01; a dimension whose mean is the same for every cell carries no information about the cell,
whatever the decoder does with it. A collapsed dimension also has a posterior equal to the prior, so its
KL divergence to N(0, 1) is near zero: the KL of each dimension says the same from the other side.

These are pure functions of NumPy arrays (cells x latent dimensions). For a model without a posterior (an
autoencoder, PCA) the "means" are its codes: the count of dimensions that vary is still defined, but the
0.01 threshold means something only against a N(0, 1) prior, so collapse is said of variational models
only (:func:`collapse_message`).
"""

from __future__ import annotations

import numpy as np

ACTIVE_THRESHOLD = 0.01
"""Burda et al. (2016)'s threshold on the variance over cells of E[z|x]."""
ACTIVE_UNITS = "latent.active_units"
ACTIVE_FRACTION = "latent.active_fraction"
KL_TOTAL = "latent.kl"


def mean_variances(posterior_means: np.ndarray) -> np.ndarray:
    """The variance over cells of each dimension's posterior mean E[z_d|x] (Burda et al. 2016, sec. 5.2)."""
    means = np.asarray(posterior_means, dtype=np.float64)
    if means.ndim != 2 or means.shape[0] < 2:
        raise ValueError(
            f"posterior means must be cells x dimensions with two or more cells, got {means.shape}"
        )
    return means.var(axis=0)


def active_units(posterior_means: np.ndarray, threshold: float = ACTIVE_THRESHOLD) -> int:
    """The number of active units: dimensions whose E[z|x] varies over cells by more than ``threshold``.

    Burda, Grosse & Salakhutdinov (2016), "Importance Weighted Autoencoders", ICLR (threshold 0.01).
    """
    return int((mean_variances(posterior_means) > threshold).sum())


def kl_per_dimension(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """The mean over cells of KL(N(mu_d, var_d) || N(0, 1)) for each latent dimension ``d``.

    Closed form 0.5 (mu^2 + var - log var - 1) (Kingma & Welling 2014, appendix B); a dimension near zero
    has collapsed onto the prior, the other side of Burda et al. (2016)'s active units.
    """
    mu = np.asarray(mean, dtype=np.float64)
    variance = np.maximum(np.asarray(var, dtype=np.float64), np.finfo(np.float64).tiny)
    if mu.shape != variance.shape or mu.ndim != 2:
        raise ValueError(f"means {mu.shape} and variances {variance.shape} must both be cells x dimensions")
    return (0.5 * (mu**2 + variance - np.log(variance) - 1.0)).mean(axis=0)


def collapse_scores(means: np.ndarray, variances: np.ndarray | None = None) -> dict[str, float]:
    """The logged collapse metrics: active units and their share of the dimensions and, when the posterior
    variances are given (a variational model), the KL of each dimension ``latent.kl.z<d>`` and their sum."""
    n_active = active_units(means)
    dims = np.asarray(means).shape[1]
    scores = {ACTIVE_UNITS: float(n_active), ACTIVE_FRACTION: n_active / dims}
    if variances is not None:
        kl = kl_per_dimension(means, variances)
        scores.update({f"{KL_TOTAL}.z{d}": float(value) for d, value in enumerate(kl)})
        scores[KL_TOTAL] = float(kl.sum())
    return scores


def collapse_message(name: str, active: int, dims: int) -> str | None:
    """One sentence when fewer than half of the ``dims`` latent dimensions are active, else None.

    ``name`` says which run (``beta_vae (beta 64, seed 0)``). Say it of variational models only: the 0.01
    threshold of Burda et al. (2016) is set against a N(0, 1) prior.
    """
    if dims < 1 or active >= dims / 2:
        return None
    return (
        f"Posterior collapse: {name} has {active} of {dims} latent dimensions active "
        f"(variance of E[z|x] over cells > {ACTIVE_THRESHOLD:g})."
    )


def run_name(model: str, beta: float | None, seed: int | None) -> str:
    """How a collapse message names a run: ``beta_vae (beta 64, seed 0)``, ``ae (seed 1)``."""
    parts = [f"beta {beta:g}"] if beta is not None and np.isfinite(beta) else []
    parts += [f"seed {seed}"] if seed is not None else []
    return f"{model} ({', '.join(parts)})" if parts else model


def run_collapse_message(name: str, metrics: dict[str, float]) -> str | None:
    """:func:`collapse_message` of one run's scores; None for a run without a posterior (no ``latent.kl``)."""
    if KL_TOTAL not in metrics or ACTIVE_UNITS not in metrics:
        return None
    dims = sum(1 for key in metrics if key.startswith(f"{KL_TOTAL}.z"))
    return collapse_message(name, int(metrics[ACTIVE_UNITS]), dims)
