"""A small synthetic dataset with known clusters, for tests and quick checks.

Cells come from ``n_clusters`` Gaussian clusters in a 4-d space, mapped linearly to ``n_genes`` genes with
noise: a structure an autoencoder of latent size >= 4 can recover, so scores say whether the pipeline works.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vaebench.data.dataset import Dataset


def make_synthetic(n_cells: int = 300, n_genes: int = 60, n_clusters: int = 4, seed: int = 0) -> Dataset:
    """``n_cells`` x ``n_genes`` float32 data labelled ``cluster`` (cluster_0, cluster_1, ...)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 4.0, size=(n_clusters, 4))
    membership = rng.integers(0, n_clusters, size=n_cells)
    hidden = centers[membership] + rng.normal(0.0, 0.7, size=(n_cells, 4))
    loadings = rng.normal(0.0, 1.0, size=(4, n_genes)) / 2.0
    X = hidden @ loadings + rng.normal(0.0, 0.5, size=(n_cells, n_genes))
    obs = pd.DataFrame({"cluster": [f"cluster_{k}" for k in membership]})
    return Dataset(
        name="synthetic",
        X=X.astype(np.float32),
        obs=obs,
        label_key="cluster",
        cell_ids=np.array([f"cell_{i}" for i in range(n_cells)]),
        gene_names=np.array([f"gene_{j}" for j in range(n_genes)]),
        description=f"{n_clusters} Gaussian clusters, {n_cells} cells x {n_genes} genes",
    )
