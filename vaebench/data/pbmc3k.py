"""PBMC3k, the seed study's data: 2,638 cells x 13,714 genes after the study's preprocessing.

Sources (the same files ``scanpy.datasets.pbmc3k`` and ``pbmc3k_processed`` use): the raw 10x counts of
2,700 peripheral blood mononuclear cells (10x Genomics), and the processed copy of the scanpy tutorial whose
``louvain`` column names each QC-passing cell's type. The study's own labels were Seurat's 9 clusters; the
scanpy tutorial's have 8 named types (it merges the two CD4 T clusters). Both files are downloaded once to
the cache (:func:`vaebench.data.download.cache_dir`); the preprocessed matrix is cached as well.
"""

from __future__ import annotations

import os
from pathlib import Path

from vaebench.data.anndata_io import dataset_from_anndata
from vaebench.data.dataset import Dataset
from vaebench.data.download import cache_dir, fetch, sha256_of
from vaebench.data.preprocess import study_preprocess
from vaebench.errors import VaebenchError

RAW_URL = "https://falexwolf.de/data/pbmc3k_raw.h5ad"
LABELS_URL = "https://raw.githubusercontent.com/chanzuckerberg/cellxgene/main/example-dataset/pbmc3k.h5ad"
PINNED_SHA256: dict[str, str | None] = {"pbmc3k_raw.h5ad": None, "pbmc3k_processed.h5ad": None}
LABEL_SOURCE = "louvain"
DEFAULT_LABEL_KEY = "cell_type"


def _downloads() -> tuple[Path, Path]:
    """The raw counts and the labelled reference, downloaded once and checked."""
    folder = cache_dir()
    raw_path = fetch(
        os.environ.get("VAEBENCH_PBMC3K_RAW_URL", RAW_URL),
        folder / "pbmc3k_raw.h5ad",
        PINNED_SHA256["pbmc3k_raw.h5ad"],
    )
    labels_path = fetch(
        os.environ.get("VAEBENCH_PBMC3K_LABELS_URL", LABELS_URL),
        folder / "pbmc3k_processed.h5ad",
        PINNED_SHA256["pbmc3k_processed.h5ad"],
    )
    return raw_path, labels_path


def load_pbmc3k(label_key: str | None = None) -> Dataset:
    """PBMC3k preprocessed as in the study, labelled with named cell types (``cell_type``)."""
    import anndata

    folder = cache_dir()
    raw_path, labels_path = _downloads()
    key = (sha256_of(raw_path)[:12], sha256_of(labels_path)[:12])
    # "counts": the file keeps the raw counts of its cells and genes too (earlier files did not).
    prepared = folder / f"pbmc3k_study_counts_{key[0]}_{key[1]}.h5ad"
    if prepared.exists():
        adata = anndata.read_h5ad(prepared)
    else:
        adata = _prepare(anndata.read_h5ad(raw_path), anndata.read_h5ad(labels_path))
        partial = prepared.with_name(prepared.name + ".part")
        adata.write_h5ad(partial)
        partial.replace(prepared)
    return dataset_from_anndata(
        adata,
        "pbmc3k",
        label_key,
        DEFAULT_LABEL_KEY,
        "PBMC3k (10x Genomics), the seed study's preprocessing",
        preprocessing="study",
    )


def load_pbmc3k_counts(label_key: str | None = None) -> Dataset:
    """The raw counts of the 2,638 labelled PBMC3k cells (those passing the study's QC), all genes, for a
    preprocessing other than the study's (``--preprocess standard`` or ``none``)."""
    import anndata

    raw_path, labels_path = _downloads()
    raw, reference = anndata.read_h5ad(raw_path), anndata.read_h5ad(labels_path)
    raw.var_names_make_unique()
    names = _cell_types(reference)
    raw = raw[raw.obs_names.isin(names.index)].copy()
    raw.obs[DEFAULT_LABEL_KEY] = names.loc[raw.obs_names].astype("category").to_numpy()
    raw.obs[LABEL_SOURCE] = raw.obs[DEFAULT_LABEL_KEY]
    return dataset_from_anndata(
        raw, "pbmc3k", label_key, DEFAULT_LABEL_KEY, "PBMC3k (10x Genomics), raw counts of the labelled cells"
    )


def _cell_types(reference):  # type: ignore[no-untyped-def]
    if LABEL_SOURCE not in reference.obs.columns:
        raise VaebenchError(
            f"The PBMC3k label file has no {LABEL_SOURCE!r} column; remove it from the cache and retry."
        )
    return reference.obs[LABEL_SOURCE].astype(str)


def _prepare(raw, reference):  # type: ignore[no-untyped-def]
    adata = study_preprocess(raw)
    names = _cell_types(reference)
    missing = [cell for cell in adata.obs_names if cell not in names.index]
    if missing:
        raise VaebenchError(
            f"{len(missing)} PBMC3k cells passing QC have no cell-type label (for example {', '.join(missing[:3])})."
        )
    adata.obs[DEFAULT_LABEL_KEY] = names.loc[adata.obs_names].to_numpy()
    adata.obs[LABEL_SOURCE] = adata.obs[DEFAULT_LABEL_KEY].astype("category")
    adata.obs[DEFAULT_LABEL_KEY] = adata.obs[DEFAULT_LABEL_KEY].astype("category")
    return adata[:, :].copy()
