"""Seeded subsamples of cells, so that the cost of a quadratic metric is bounded whatever the data's size."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from vaebench.data.matrix import dense_rows as matrix_rows


def subsample_cells(n_cells: int, max_cells: int, seed: int) -> np.ndarray:
    """Sorted row indices of at most ``max_cells`` of ``n_cells`` cells, drawn without replacement.

    All cells (in order) when there are no more than ``max_cells``; otherwise a uniform sample that the
    seed fixes, so every metric that asks with the same cap and seed scores the same cells.
    """
    if n_cells <= max_cells:
        return np.arange(n_cells)
    return np.sort(np.random.default_rng(seed).choice(n_cells, size=max_cells, replace=False))


def dense_rows(matrix: np.ndarray | sp.spmatrix | sp.sparray, rows: np.ndarray) -> np.ndarray:
    """The chosen rows of a dense or sparse matrix as a dense float64 array (only those rows densified)."""
    return np.asarray(matrix_rows(matrix, rows), dtype=np.float64)
