"""Structure kept from the input: how far the embedding keeps each cell's neighbours in the input matrix.

Both scores compare the input (the cells x genes matrix the model was fitted on, dense or sparse) with the
embedding on the same seeded subsample of at most ``max_cells`` cells; neighbours are sought within that
subsample in both spaces, Euclidean. They are the local-structure scores of Open Problems' dimensionality
reduction task (Luecken et al. 2025, "Defining and benchmarking open problems in single-cell analysis",
Nat. Biotechnol.), after Venna & Kaski (2001) and Lee & Verleysen (2009).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.neighbors import NearestNeighbors

from vaebench.evaluate.subsample import dense_rows, uniform_sample

MAX_CELLS = 3000
"""Cells compared at most (a seeded uniform sample above that): trustworthiness ranks all pairs."""
N_NEIGHBOURS = 15


def _paired_sample(
    inputs: np.ndarray | sp.spmatrix, embedding: np.ndarray, max_cells: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if inputs.shape[0] != embedding.shape[0]:
        raise ValueError(f"The input has {inputs.shape[0]} cells but the embedding {embedding.shape[0]}.")
    rows = uniform_sample(embedding.shape[0], max_cells, seed)
    return dense_rows(inputs, rows), np.asarray(embedding, dtype=np.float64)[rows]


def _k(n_cells: int, n_neighbors: int) -> int:
    return max(1, min(n_neighbors, (n_cells - 1) // 2))


def trustworthiness(
    inputs: np.ndarray | sp.spmatrix,
    embedding: np.ndarray,
    seed: int = 0,
    max_cells: int = MAX_CELLS,
    n_neighbors: int = N_NEIGHBOURS,
) -> float:
    """Trustworthiness of the embedding's k nearest neighbours in [0, 1]: 1 when none of them is an
    intruder (a cell far from the cell in the input), about 0.5 for a random embedding.

    Venna & Kaski (2001), "Neighborhood preservation in nonlinear projection methods", ICANN;
    ``sklearn.manifold.trustworthiness``, k = 15.
    """
    x, z = _paired_sample(inputs, embedding, max_cells, seed)
    return float(sk_trustworthiness(x, z, n_neighbors=_k(len(z), n_neighbors)))


def knn_preservation(
    inputs: np.ndarray | sp.spmatrix,
    embedding: np.ndarray,
    seed: int = 0,
    max_cells: int = MAX_CELLS,
    n_neighbors: int = N_NEIGHBOURS,
) -> float:
    """The share of each cell's k nearest neighbours in the input found among its k nearest in the
    embedding, averaged over cells: 1 when every neighbourhood is kept, about k / n for a random embedding.

    Lee & Verleysen (2009), "Quality assessment of dimensionality reduction: rank-based criteria",
    Neurocomputing 72 (Q_NX(k)); neighbours by ``sklearn.neighbors.NearestNeighbors``, k = 15.
    """
    x, z = _paired_sample(inputs, embedding, max_cells, seed)
    k = _k(len(z), n_neighbors)
    # kneighbors() without a query returns each fitted cell's neighbours, the cell itself left out.
    near_x = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(return_distance=False)
    near_z = NearestNeighbors(n_neighbors=k).fit(z).kneighbors(return_distance=False)
    kept = [len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(near_x, near_z, strict=True)]
    return float(np.mean(kept) / k)
