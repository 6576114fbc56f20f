"""Which cells each evaluation step sees: all of them up to a size, a stratified seeded sample above it.

The study's protocol (t-SNE, then k-means on the map) costs more than linear time in the cells: scikit-
learn's Barnes-Hut t-SNE took 145 s for 20,000 cells and its 3-d map 441 s on this project's machine. Up to
``tsne_cells`` cells (default 10,000) every step sees every cell, so the study's data, pbmc68k and the golden
check give exactly the numbers they gave before; above it the map and the k-means on it use a sample of
``tsne_cells`` cells drawn per label class in proportion to its size (every class keeps at least one cell),
with the run's seed. Scores of the latent itself (k-means on the latent) use every cell; the silhouette,
quadratic in the cells, uses a sample of ``SILHOUETTE_CELLS``. The 3-d t-SNE is a figure, not a score:
it is drawn on at most ``TSNE3D_CELLS`` cells.

The metrics beyond the study's bound their cost the same way: the label scores (:mod:`.scib`) on a
stratified sample, the structure scores (:mod:`.neighbours`, which compare the input with the embedding and
know no labels) on a uniform one (:func:`uniform_sample`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from vaebench.data.matrix import dense_rows as matrix_rows

SILHOUETTE_CELLS = 10_000
TSNE3D_CELLS = 3_000


def stratified_sample(labels: np.ndarray, size: int, seed: int) -> np.ndarray | None:
    """Sorted indices of ``size`` cells drawn per class in proportion to its share; None when ``size``
    covers every cell (the caller then uses all cells, unchanged)."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    if size >= n:
        return None
    rng = np.random.default_rng(seed)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quota = np.maximum(1, np.floor(counts * size / n).astype(int))
    quota = np.minimum(quota, counts)
    # Hand the cells left by rounding to the classes with the largest remainders.
    short = size - int(quota.sum())
    if short > 0:
        remainder = counts * size / n - np.floor(counts * size / n)
        room = counts - quota
        for k in np.argsort(-remainder):
            if short == 0:
                break
            extra = min(room[k], short)
            quota[k] += extra
            short -= extra
    chosen = [
        rng.choice(np.flatnonzero(inverse == k), size=quota[k], replace=False) for k in range(len(classes))
    ]
    return np.sort(np.concatenate(chosen))


def sample_cells(labels: np.ndarray | None, n_cells: int, size: int, seed: int) -> np.ndarray | None:
    """:func:`stratified_sample` of labelled cells; without labels a plain seeded sample of ``size`` of the
    ``n_cells`` cells (:func:`uniform_sample`). None when ``size`` covers every cell."""
    if labels is not None:
        return stratified_sample(labels, size, seed)
    return None if size >= n_cells else uniform_sample(n_cells, size, seed)


def take(values: np.ndarray | None, cells: np.ndarray | None) -> np.ndarray | None:
    """``values`` at ``cells`` (all of them when ``cells`` is None); no values (no labels) stay None."""
    return values if cells is None or values is None else values[cells]


def sampled_rows(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """:func:`stratified_sample` as row indices: every row when ``size`` covers them all."""
    cells = stratified_sample(labels, size, seed)
    return np.arange(len(labels)) if cells is None else cells


def uniform_sample(n_cells: int, max_cells: int, seed: int) -> np.ndarray:
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
