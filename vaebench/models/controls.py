"""Control methods: the floor and the ceiling a learned code is measured against.

Open Problems' task design (Luecken et al. 2025, "Defining and benchmarking open problems in single-cell
analysis", Nat. Biotechnol.) scores every method between negative and positive controls. Here:
``random``, a Gaussian embedding of the latent's size drawn independently of the data (the floor), and
``pca50``, the input's top 50 principal components (the ceiling a 6-d code is measured against: near the
"true features" while it scales to large data, as the single-cell literature's usual working space).
"""

from __future__ import annotations

import numpy as np

from vaebench.models.pca import PCAModel

TRUE_FEATURES_COMPONENTS = 50


class RandomEmbedding:
    """A standard Gaussian code of ``latent_dim`` per cell, fixed by the seed and blind to the data."""

    estimator = None  # nothing was learned, so nothing is logged as a model

    def __init__(self, latent_dim: int, seed: int) -> None:
        self.latent_dim = latent_dim
        self.seed = seed

    def fit(self, X: np.ndarray) -> RandomEmbedding:
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return rng.standard_normal((X.shape[0], self.latent_dim)).astype(np.float32)


def pca_true_features(n_cells: int, n_genes: int, seed: int) -> PCAModel:
    """PCA to 50 components (fewer when the data have fewer genes or cells: the sparse solver, ARPACK,
    needs fewer components than either), whatever the latent size."""
    return PCAModel(min(TRUE_FEATURES_COMPONENTS, n_genes - 1, n_cells - 1), seed)
