"""Preprocessing of raw counts, in scanpy (Wolf, Angerer & Theis 2018, Genome Biol. 19), as a named step.

- ``none``: the values as they come.
- ``study``: the seed study's Seurat steps (Satija lab pbmc3k tutorial; Butler et al. 2018, Nat.
  Biotechnol. 36): genes seen in at least 3 cells, cells with 200 < genes < 2,500 and under 5 %
  mitochondrial counts, LogNormalize with scale factor 10,000, ScaleData on all genes (unit variance,
  clipped at 10). On PBMC3k this gives the study's 2,638 cells x 13,714 genes. The result is dense.
- ``standard``: scanpy's usual steps (Luecken & Theis 2019, "Current best practices in single-cell
  RNA-seq analysis", Mol. Syst. Biol. 15): library sizes normalised to 10,000, log1p, the ``n_top_genes``
  most variable genes (Seurat's dispersion method, Satija et al. 2015), and optionally each gene scaled to
  unit variance and clipped at 10. Without scaling the matrix stays sparse, and on a sparse matrix the
  normalisation and the gene selection run in place, a block of cells at a time
  (:mod:`vaebench.data.blockwise`, scanpy's results to the bit).

Both keep the raw counts of the cells and genes they keep, in ``layers["counts"]`` (sparse when the input
was): count models such as ``nb_vae`` (Lopez et al. 2018) train on them, every other model on ``X``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vaebench.data.anndata_io import COUNTS_LAYER
from vaebench.data.dataset import Dataset
from vaebench.data.matrix import Matrix, as_matrix, is_raw_counts, stored_values
from vaebench.errors import VaebenchError

PREPROCESSING = ("none", "study", "standard")
DEFAULT_N_TOP_GENES = 2000
TARGET_SUM = 1e4
"""What ``study`` and ``standard`` scale each cell's counts to before log1p (scanpy's ``normalize_total``)."""


def check_mode(mode: str | None) -> None:
    if mode is not None and mode not in PREPROCESSING:
        raise VaebenchError(f"Unknown preprocessing {mode!r}; choose one of: {', '.join(PREPROCESSING)}.")


def keep_counts(adata) -> None:  # type: ignore[no-untyped-def]
    """Put a copy of the raw counts in ``layers["counts"]`` before ``X`` is normalised in place; later cell
    and gene filters subset the layer with ``X``."""
    adata.layers[COUNTS_LAYER] = as_matrix(adata.X, "the counts").copy()


class CountValues:
    """The values of a raw-count matrix saved before it is normalised in place, to give back the counts of
    the genes kept afterwards without holding a second whole matrix.

    Normalising and log1p change a CSR matrix's values, not where they are, so only the values are saved,
    in the smallest unsigned integer type that holds them exactly (``uint16`` for UMI counts): at 100,000
    cells x 20,000 genes a quarter of the memory of a copy of the matrix (issue 7's 4 GB bar). The matrix
    must hold raw counts (non-negative integers), as :func:`preprocess` checks before it gets here."""

    def __init__(self, matrix: Matrix) -> None:
        self._sparse = sp.issparse(matrix)
        if self._sparse:
            matrix.sum_duplicates()  # canonical: normalising in place then never reorders the values
            self._indices, self._indptr = matrix.indices, matrix.indptr
        values = stored_values(matrix) if self._sparse else np.asarray(matrix)
        self._dtype, self._shape = values.dtype, matrix.shape
        self._values = values.astype(_smallest_count_type(values), copy=True)

    def columns(self, prepared: Matrix, keep: np.ndarray) -> Matrix:
        """The saved counts of the ``keep`` columns, in the matrix's own type and dtype; ``prepared`` is the
        matrix after normalising in place, whose CSR structure must be the saved one's."""
        if not self._sparse:
            return self._values[:, keep].astype(self._dtype)
        same_structure = sp.issparse(prepared) and all(
            mine is theirs or np.array_equal(mine, theirs)
            for mine, theirs in ((self._indices, prepared.indices), (self._indptr, prepared.indptr))
        )
        if not same_structure:
            raise RuntimeError("Normalising moved the values of the count matrix; its counts are lost.")
        counts = sp.csr_matrix((self._values, self._indices, self._indptr), shape=self._shape)
        return counts[:, keep].astype(self._dtype)


def _smallest_count_type(values: np.ndarray) -> np.dtype:
    top = float(values.max()) if values.size else 0.0
    for dtype in (np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return values.dtype


def study_preprocess(adata):  # type: ignore[no-untyped-def]
    """QC, log-normalisation and scaling of raw counts, returning a new AnnData of float32 values."""
    import scanpy as sc

    adata = adata.copy()
    keep_counts(adata)
    adata.var_names_make_unique()
    sc.pp.filter_cells(adata, min_genes=200)
    sc.pp.filter_genes(adata, min_cells=3)
    adata.var["mt"] = adata.var_names.str.upper().str.startswith("MT-")
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
    adata = adata[(adata.obs["n_genes_by_counts"] < 2500) & (adata.obs["pct_counts_mt"] < 5)].copy()
    sc.pp.normalize_total(adata, target_sum=TARGET_SUM)
    sc.pp.log1p(adata)
    # ScaleData centres every gene, so the matrix becomes dense here (2,638 x 13,714 float32: 145 MB).
    if hasattr(adata.X, "toarray"):
        adata.X = adata.X.toarray()
    sc.pp.scale(adata, max_value=10)
    adata.X = np.asarray(adata.X, dtype=np.float32)
    return adata


def standard_preprocess(  # type: ignore[no-untyped-def]
    adata, n_top_genes: int = DEFAULT_N_TOP_GENES, scale: bool = False, copy: bool = True
):
    """Normalise total, log1p, keep the most variable genes, optionally scale; returns the result (a new
    AnnData, or with ``copy=False`` the given one's matrix normalised in place to save a copy of it)."""
    import scanpy as sc

    from vaebench.data.blockwise import normalise_total_in_place, seurat_variable_genes  # numba: 0.4 s

    if copy:
        adata = adata.copy()
    counts = CountValues(adata.X)  # the dataset's float32 matrix itself: a new wrapper would keep its values
    # On CSR, scanpy's results without its copies of the matrix; dense input goes through scanpy.
    blockwise = sp.issparse(adata.X) and adata.X.format == "csr"
    if blockwise:
        normalise_total_in_place(adata.X, target_sum=TARGET_SUM)
    else:
        sc.pp.normalize_total(adata, target_sum=TARGET_SUM)
    sc.pp.log1p(adata)
    keep = np.ones(adata.n_vars, dtype=bool)
    if adata.n_vars > n_top_genes and blockwise:
        keep = seurat_variable_genes(adata.X, n_top_genes)
    elif adata.n_vars > n_top_genes:
        sc.pp.highly_variable_genes(adata, n_top_genes=n_top_genes, flavor="seurat")
        keep = adata.var["highly_variable"].to_numpy()
    kept_counts = counts.columns(adata.X, keep)
    del counts
    adata = adata[:, keep].copy() if not keep.all() else adata
    adata.layers[COUNTS_LAYER] = kept_counts
    if scale:
        if hasattr(adata.X, "toarray"):
            adata.X = adata.X.toarray()
        sc.pp.scale(adata, max_value=10)
    adata.X = as_matrix(adata.X, "the preprocessed matrix")
    return adata


def to_anndata(dataset: Dataset):  # type: ignore[no-untyped-def]
    import anndata

    obs = dataset.obs.copy()
    obs.index = pd.Index(dataset.cell_ids.astype(str))
    layers = {} if dataset.raw_counts is None else {COUNTS_LAYER: dataset.raw_counts}
    return anndata.AnnData(
        X=dataset.X, obs=obs, var=pd.DataFrame(index=dataset.gene_names.astype(str)), layers=layers
    )


def from_anndata(adata, like: Dataset, preprocessing: str) -> Dataset:  # type: ignore[no-untyped-def]
    """A :class:`Dataset` with ``like``'s name and labels from a (preprocessed) AnnData, with its counts."""
    return Dataset(
        name=like.name,
        X=as_matrix(adata.X, like.name),
        obs=adata.obs[list(like.obs.columns)].reset_index(drop=True),
        label_key=like.label_key,
        cell_ids=np.asarray(adata.obs_names.astype(str)),
        gene_names=np.asarray(adata.var_names.astype(str)),
        description=like.description,
        preprocessing=preprocessing,
        raw_counts=adata.layers.get(COUNTS_LAYER),
    )


def preprocess(
    dataset: Dataset,
    mode: str,
    n_top_genes: int = DEFAULT_N_TOP_GENES,
    scale: bool = False,
    consume: bool = False,
) -> Dataset:
    """``dataset`` prepared by ``mode``; ``study`` and ``standard`` need raw counts and refuse anything else.

    ``consume=True`` lets ``standard`` normalise the dataset's own matrix in place (no copy of a large
    count matrix); the given dataset must not be used afterwards."""
    check_mode(mode)
    if mode == "none":
        return dataset
    require_raw_counts(dataset, mode)
    adata = to_anndata(dataset)
    if mode == "study":
        prepared = study_preprocess(adata)
    else:
        prepared = standard_preprocess(adata, n_top_genes, scale, copy=not consume)
    return from_anndata(prepared, dataset, describe(mode, n_top_genes, scale))


def require_raw_counts(dataset: Dataset, mode: str) -> None:
    """Refuse, in one sentence, to prepare by ``mode`` a matrix that does not hold raw counts."""
    if not is_raw_counts(dataset.X):
        raise VaebenchError(
            f"--preprocess {mode} needs raw counts, but {dataset.name!r} holds values that are not "
            f"non-negative integers (it was already prepared: {dataset.preprocessing}); use --preprocess none."
        )


def describe(mode: str, n_top_genes: int = DEFAULT_N_TOP_GENES, scale: bool = False) -> str:
    """The preprocessing as one logged word: ``standard`` gains its settings."""
    if mode != "standard":
        return mode
    return f"standard(n_top_genes={n_top_genes}, scale={scale})"
