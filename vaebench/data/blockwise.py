"""scanpy's standard steps on a large sparse matrix, to the bit, without the copies of it scanpy makes.

At 100,000 cells x 20,000 genes (125 million non-zeros, 1 GB) scanpy's ``normalize_total`` divides by an
array of the cells' sizes repeated for every value, into a new array of values (1 GB for a moment), and
its ``highly_variable_genes(flavor="seurat")`` works on a copy of the whole matrix and then on its
``expm1``: a preprocessing that peaked at 3.5 GB for a 1 GB matrix. Here:

- :func:`normalise_total_in_place`: each cell's values divided by its total over ``target_sum`` (Wolf,
  Angerer & Theis 2018, Genome Biol. 19, ``sc.pp.normalize_total``), in place and a block of cells at a
  time, with scanpy's sums and divisions in scanpy's types and order.
- :func:`seurat_variable_genes`: Seurat's dispersion method (Satija et al. 2015, Nat. Biotechnol. 33):
  each gene's mean and variance on the normalised scale (``expm1`` of the log values), its dispersion
  log(variance / mean) z-scored within 20 equal-width bins of log1p(mean), the genes of highest normalised
  dispersion kept. The matrix is read a block of cells at a time and only the genes' sums are kept, added
  in the order scanpy's kernel adds them (``scanpy.preprocessing._utils.sparse_mean_var_minor_axis``: per
  thread, every ``n_threads``-th cell, then the threads' partial sums).

Both give what scanpy gives to the bit (tests/test_scale.py compares them with scanpy itself, with blocks
that divide the cells or not; the statistics were also checked with 1 and 5 numba threads).
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp

N_BINS = 20
CELLS_PER_BLOCK = 10_000


@numba.njit(parallel=True, cache=True)
def _cell_totals(data, indptr):  # type: ignore[no-untyped-def]
    """Each cell's total, summed in float64 and stored in the values' type, as scanpy's _normalize_csr."""
    rows = len(indptr) - 1
    totals = np.zeros(rows, dtype=data.dtype)
    for i in numba.prange(rows):
        count = 0.0
        for j in range(indptr[i], indptr[i + 1]):
            count += data[j]
        totals[i] = count
    return totals


def cell_scales(counts: sp.csr_matrix, target_sum: float = 1e4) -> np.ndarray:
    """What each cell's values are divided by: its total over ``target_sum`` (1 for a cell without counts,
    which stays zero; scanpy warns of it, and so does this)."""
    scale = _cell_totals(counts.data, counts.indptr) / target_sum
    if not scale.all():
        warnings.warn("Some cells have zero counts", UserWarning, stacklevel=3)
    return scale + (scale == 0)


def normalise_total_in_place(
    counts: sp.csr_matrix, target_sum: float = 1e4, cells_per_block: int = CELLS_PER_BLOCK
) -> None:
    """Scale each cell (row) of a float CSR matrix to ``target_sum`` in place, a block of cells at a time;
    a cell without counts stays zero (scanpy warns of it, and so does this)."""
    scale = cell_scales(counts, target_sum)
    data, indptr = counts.data, counts.indptr
    for first in range(0, counts.shape[0], cells_per_block):
        last = min(first + cells_per_block, counts.shape[0])
        values = data[indptr[first] : indptr[last]]  # a view: divided where it lies
        np.true_divide(values, np.repeat(scale[first:last], np.diff(indptr[first : last + 1])), out=values)


@numba.njit(parallel=True, cache=True)
def _add_block(data, indices, indptr, first_cell, sums, squared_sums):  # type: ignore[no-untyped-def]
    """Add one block of cells (CSR arrays, values already on the normalised scale) to the per-thread sums;
    cell ``first_cell + r`` goes to thread ``(first_cell + r) % n_threads``, as in scanpy."""
    n_threads, n_genes = sums.shape
    rows = len(indptr) - 1
    for i in numba.prange(n_threads):
        for r in range((i - first_cell) % n_threads, rows, n_threads):
            for j in range(indptr[r], indptr[r + 1]):
                gene = indices[j]
                if gene >= n_genes:
                    continue
                value = data[j]
                sums[i, gene] += value
                squared_sums[i, gene] += value * value


@numba.njit(parallel=True, cache=True)
def _mean_var(sums, squared_sums, n_cells):  # type: ignore[no-untyped-def]
    """The genes' means and (biased) variances from the per-thread sums, as scanpy's kernel ends."""
    n_genes = sums.shape[1]
    means = np.zeros(n_genes)
    variances = np.zeros(n_genes)
    for c in numba.prange(n_genes):
        total = sums[:, c].sum()
        means[c] = total / n_cells
        variances[c] = squared_sums[:, c].sum() / n_cells - (total / n_cells) ** 2
    return means, variances


class GeneMoments:
    """Each gene's mean and unbiased variance of ``expm1`` of log1p-normalised values, added up a block of
    cells at a time in scanpy's order (per numba thread, every ``n_threads``-th cell), so that the blocks
    can come from memory or from a file and the result is the same to the bit."""

    def __init__(self, n_genes: int) -> None:
        n_threads = numba.get_num_threads()
        self.sums = np.zeros((n_threads, n_genes))
        self.squared_sums = np.zeros((n_threads, n_genes))
        self.n_cells = 0

    def add(self, log_block: sp.csr_matrix, first_cell: int) -> None:
        """Add the cells ``first_cell`` onwards: a CSR block of log1p-normalised values."""
        _add_block(
            np.expm1(log_block.data),
            log_block.indices,
            log_block.indptr - log_block.indptr[0],
            first_cell,
            self.sums,
            self.squared_sums,
        )
        self.n_cells += log_block.shape[0]

    def mean_var(self) -> tuple[np.ndarray, np.ndarray]:
        means, variances = _mean_var(self.sums, self.squared_sums, self.n_cells)
        if self.n_cells != 1:
            variances *= self.n_cells / (self.n_cells - 1)  # R's convention, as scanpy's _get_mean_var
        return means, variances


def normalised_mean_var(
    log_values: sp.csr_matrix, cells_per_block: int = CELLS_PER_BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """Each gene's mean and unbiased variance of ``expm1`` of a log1p-normalised CSR matrix, reading
    ``cells_per_block`` cells at a time (memory: one block's values, not the matrix)."""
    moments = GeneMoments(log_values.shape[1])
    for first in range(0, log_values.shape[0], cells_per_block):
        moments.add(log_values[first : first + cells_per_block], first)
    return moments.mean_var()


def seurat_variable_genes(
    log_values: sp.csr_matrix, n_top_genes: int, cells_per_block: int = CELLS_PER_BLOCK
) -> np.ndarray:
    """A boolean mask of the ``n_top_genes`` genes of highest normalised dispersion (ties at the cut-off
    all kept, as scanpy keeps them) of a log1p-normalised CSR matrix."""
    mean, var = normalised_mean_var(sp.csr_matrix(log_values, copy=False), cells_per_block)
    return seurat_selection(mean, var, n_top_genes)


def seurat_selection(mean: np.ndarray, var: np.ndarray, n_top_genes: int) -> np.ndarray:
    """The mask of :func:`seurat_variable_genes` from the genes' means and variances (changed in place)."""
    mean[mean == 0] = 1e-12
    dispersion = var / mean
    dispersion[dispersion == 0] = np.nan
    with np.errstate(invalid="ignore"):  # a variance rounded below zero: NaN, left out as in scanpy
        dispersion = np.log(dispersion)
    mean = np.log1p(mean)
    genes = pd.DataFrame({"means": mean, "dispersions": dispersion})
    genes["mean_bin"] = pd.cut(genes["means"], bins=N_BINS)
    per_bin = genes.groupby("mean_bin", observed=True)["dispersions"].agg(avg="mean", dev="std")
    alone = per_bin["dev"].isnull()  # a gene alone in its bin gets a normalised dispersion of 1
    per_bin.loc[alone, "dev"] = per_bin.loc[alone, "avg"]
    per_bin.loc[alone, "avg"] = 0
    per_bin = per_bin.loc[genes["mean_bin"]].set_index(genes.index)
    normalised = ((genes["dispersions"] - per_bin["avg"]) / per_bin["dev"]).to_numpy()
    ranked = np.sort(normalised[~np.isnan(normalised)])[::-1]
    if ranked.size == 0:
        return np.zeros(len(normalised), dtype=bool)
    cut_off = ranked[min(n_top_genes, ranked.size) - 1]
    return np.nan_to_num(normalised, nan=-np.inf) >= cut_off
