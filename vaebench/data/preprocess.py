"""The seed study's preprocessing of raw counts, in scanpy.

The study ran the Seurat pbmc3k tutorial (Satija lab; Butler et al. 2018, Nat. Biotechnol. 36):
genes seen in at least 3 cells, cells with 200 < genes < 2,500 and under 5% mitochondrial counts, then
LogNormalize with scale factor 10,000 and ScaleData on all genes (unit variance, clipped at 10). The same
steps in scanpy (Wolf, Angerer & Theis 2018, Genome Biol. 19) give PBMC3k's 2,638 cells x 13,714 genes.
"""

from __future__ import annotations

import numpy as np


def study_preprocess(adata):  # type: ignore[no-untyped-def]
    """QC, log-normalisation and scaling of raw counts, returning a new AnnData of float32 values."""
    import scanpy as sc

    adata = adata.copy()
    adata.var_names_make_unique()
    sc.pp.filter_cells(adata, min_genes=200)
    sc.pp.filter_genes(adata, min_cells=3)
    adata.var["mt"] = adata.var_names.str.upper().str.startswith("MT-")
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
    adata = adata[(adata.obs["n_genes_by_counts"] < 2500) & (adata.obs["pct_counts_mt"] < 5)].copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    # ScaleData centres every gene, so the matrix becomes dense here (2,638 x 13,714 float32: 145 MB).
    if hasattr(adata.X, "toarray"):
        adata.X = adata.X.toarray()
    sc.pp.scale(adata, max_value=10)
    adata.X = np.asarray(adata.X, dtype=np.float32)
    return adata
