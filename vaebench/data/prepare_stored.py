"""``--preprocess standard`` of a raw-count matrix kept in its file, a block of cells at a time, into the
prepared-data cache.

The steps and their numbers are :func:`vaebench.data.preprocess.standard_preprocess`'s (normalise each
cell to 10,000, log1p, Seurat's most variable genes; Luecken & Theis 2019, Mol. Syst. Biol. 15), computed
as :mod:`vaebench.data.blockwise` computes them in memory, so the prepared matrix is the same to the bit
(``tests/test_stored.py`` compares them):

1. a first pass over the file's cells sums each gene's mean and variance on the normalised scale
   (:class:`~vaebench.data.blockwise.GeneMoments`), from which the genes are chosen;
2. a second pass divides the kept genes' counts by their cells' totals again, logs them and writes them
   (``X``) with the kept genes' raw counts (``layers["counts"]``, for count models) to the cache file
   (:func:`~vaebench.data.stored.write_h5ad_blocks`).

Memory is one block of cells (10,000 by default) and the genes' sums, whatever the number of cells.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vaebench.data.anndata_io import COUNTS_LAYER
from vaebench.data.blockwise import (
    CELLS_PER_BLOCK,
    GeneMoments,
    cell_scales,
    normalise_total_in_place,
    seurat_selection,
)
from vaebench.data.dataset import Dataset
from vaebench.data.matrix import memory_blocks
from vaebench.data.preprocess import TARGET_SUM
from vaebench.data.stored import StoredCsr, write_h5ad_blocks


def _log_normalise_in_place(counts: sp.csr_matrix) -> sp.csr_matrix:
    """A block of raw counts (float32 CSR, just read) normalised to ``TARGET_SUM`` and log1p'd in place."""
    normalise_total_in_place(counts, target_sum=TARGET_SUM)
    np.log1p(counts.data, out=counts.data)  # scanpy's log1p of a CSR matrix, on its values
    return counts


def _kept_genes(
    counts: sp.csr_matrix, keep: np.ndarray, new_column: np.ndarray
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The kept genes' log-normalised values and raw counts of a block of raw counts. Each cell is divided
    by its total over all genes, as in memory, but only the kept genes' values are divided and logged
    (about a tenth of them): elementwise, so the same bits as normalising everything, then selecting."""
    scale = cell_scales(counts, TARGET_SUM)
    entries = keep[counts.indices]
    indptr = np.concatenate(([0], np.cumsum(entries)))[counts.indptr].astype(counts.indptr.dtype)
    indices = new_column[counts.indices[entries]]
    raw = counts.data[entries]
    values = raw / np.repeat(scale, np.diff(indptr))
    np.log1p(values, out=values)
    shape = (counts.shape[0], int(keep.sum()))
    return (
        sp.csr_matrix((values, indices, indptr), shape=shape, copy=False),
        sp.csr_matrix((raw, indices, indptr), shape=shape, copy=False),
    )


def variable_genes(matrix: StoredCsr, n_top_genes: int, cells: int = CELLS_PER_BLOCK) -> np.ndarray:
    """The mask of the ``n_top_genes`` most variable genes (all of them when there are no more), from one
    pass over the file; warns once, as scanpy does, when some cells have no counts."""
    if matrix.shape[1] <= n_top_genes:
        return np.ones(matrix.shape[1], dtype=bool)
    moments = GeneMoments(matrix.shape[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for first, counts in memory_blocks(matrix, cells):
            moments.add(_log_normalise_in_place(counts), first)
        empty_cells = any("zero counts" in str(w.message) for w in caught)
    if empty_cells:
        warnings.warn("Some cells have zero counts", UserWarning, stacklevel=2)
    return seurat_selection(*moments.mean_var(), n_top_genes)


def prepare_standard_stored(
    raw: Dataset,
    n_top_genes: int,
    path: Path,
    uns: dict[str, Any],
    cells: int = CELLS_PER_BLOCK,
) -> None:
    """Write ``raw`` (raw counts in a :class:`StoredCsr`) prepared by ``standard`` to the ``.h5ad`` at
    ``path``: the kept genes' log-normalised values as X, their counts as ``layers["counts"]``, the
    cells' annotations, and ``uns``."""
    matrix = raw.X
    if not isinstance(matrix, StoredCsr):
        raise TypeError("prepare_standard_stored reads a matrix kept in its file")
    keep = variable_genes(matrix, n_top_genes, cells)

    new_column = (np.cumsum(keep) - 1).astype(np.int32)

    def prepared_blocks() -> Iterator[dict[str, sp.csr_matrix]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the empty cells were told of in the first pass
            for _, counts in memory_blocks(matrix, cells):
                values, kept_counts = _kept_genes(counts, keep, new_column)
                yield {"X": values, f"layers/{COUNTS_LAYER}": kept_counts}

    obs = raw.obs.copy()
    obs.index = pd.Index(raw.cell_ids.astype(str))
    var = pd.DataFrame(index=raw.gene_names[keep].astype(str))
    write_h5ad_blocks(path, obs, var, prepared_blocks(), names=("X", f"layers/{COUNTS_LAYER}"), uns=uns)
