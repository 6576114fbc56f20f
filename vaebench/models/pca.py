"""The linear baseline: principal component analysis to the same latent size.

Pearson (1901); Halko, Martinsson & Tropp (2011) for the randomized solver scikit-learn picks on dense,
wide data. A sparse matrix is never made dense: ARPACK (Lehoucq, Sorensen & Yang 1998) works on it
through a linear operator that centres implicitly, as scanpy's ``pca`` does for sparse input.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA


class PCAModel:
    """scikit-learn PCA behind the same fit/encode interface the runner uses for every model."""

    def __init__(self, latent_dim: int, seed: int) -> None:
        self.latent_dim = latent_dim
        self.pca = PCA(n_components=latent_dim, random_state=seed)

    @property
    def estimator(self) -> PCA:
        """The fitted scikit-learn object, which is what is logged as the run's model."""
        return self.pca

    def fit(self, X: np.ndarray | sp.csr_matrix) -> PCAModel:
        if sp.issparse(X):
            self.pca.set_params(svd_solver="arpack")
        self.pca.fit(X)
        return self

    def encode(self, X: np.ndarray | sp.csr_matrix) -> np.ndarray:
        return self.pca.transform(X).astype(np.float32)
