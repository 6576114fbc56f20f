"""The dataset registry: the names users type (``--dataset``), and users' own files (``--data``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from vaebench.data.anndata_io import dataset_from_anndata
from vaebench.data.dataset import Dataset
from vaebench.data.digits import load_digits_dataset
from vaebench.data.matrix import Matrix
from vaebench.data.pbmc3k import DEFAULT_LABEL_KEY as PBMC3K_LABEL_KEY
from vaebench.data.pbmc3k import load_pbmc3k, load_pbmc3k_counts
from vaebench.data.synthetic import make_synthetic, make_synthetic_counts
from vaebench.errors import VaebenchError
from vaebench.registry import Registry

DEFAULT_DATASET = "pbmc68k"


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: ``load(label_key)`` returns it labelled with that column (None: the default)."""

    name: str
    description: str
    default_label_key: str
    load: Callable[..., Dataset]
    offline: bool = True
    tune_label_key: str | None = None
    sized: bool = False
    """``load`` takes ``n_cells`` and ``n_genes`` (a generated dataset: ``--cells``, ``--genes``)."""
    native_preprocess: str = "none"
    """The preprocessing ``load`` itself applies (``study`` for pbmc3k); ``none``: the values as shipped."""
    load_counts: Callable[[str | None], Dataset] | None = None
    """The raw counts of a dataset whose ``load`` prepares them, for another ``--preprocess``."""
    has_counts: bool = False
    """Raw counts come with it, whatever the preprocessing (what count models such as ``nb_vae`` need)."""


def _pbmc68k(label_key: str | None) -> Dataset:
    import scanpy as sc

    return dataset_from_anndata(
        sc.datasets.pbmc68k_reduced(),
        "pbmc68k",
        label_key,
        "bulk_labels",
        "scanpy's pbmc68k_reduced: 700 PBMCs x 765 genes, scaled; bulk_labels from sorted populations",
        preprocessing="as shipped by scanpy (log-normalised, scaled)",
    )


def pbmc68k_counts(label_key: str | None) -> Dataset:
    """The real UMI counts behind scanpy's ``pbmc68k_reduced`` (Zheng et al. 2017, Nat. Commun. 8).

    Its ``raw`` holds ``log1p`` of each cell's counts scaled to 10,000 and ``obs["n_counts"]`` each cell's
    total, so ``expm1(raw) * n_counts / 10,000`` gives the counts back (within 0.05 of an integer for
    99.999 % of the non-zeros; they are rounded): 700 cells x 765 genes of real 10x counts, offline.
    """
    import scanpy as sc
    import scipy.sparse as sp

    adata = sc.datasets.pbmc68k_reduced()
    raw = adata.raw.X.toarray() if sp.issparse(adata.raw.X) else np.asarray(adata.raw.X)
    counts = np.rint(np.expm1(raw.astype(np.float64)) * adata.obs["n_counts"].to_numpy()[:, None] / 1e4)
    counts_adata = ad.AnnData(
        X=sp.csr_matrix(counts.astype(np.float32)),
        obs=adata.obs.copy(),
        var=pd.DataFrame(index=adata.raw.var_names),
    )
    return dataset_from_anndata(
        counts_adata,
        "pbmc68k_counts",
        label_key,
        "bulk_labels",
        "UMI counts of scanpy's pbmc68k_reduced (700 PBMCs x 765 genes), recovered from its raw log-normalised "
        "values and each cell's total count",
        preprocessing="none",
    )


def _synthetic(label_key: str | None, **size: int) -> Dataset:
    dataset = make_synthetic(**size)
    return dataset if label_key is None else dataset.with_label_key(label_key)


def _synthetic_counts(label_key: str | None, **size: int) -> Dataset:
    dataset = make_synthetic_counts(**size)
    return dataset if label_key is None else dataset.with_label_key(label_key)


DATASETS: Registry[DatasetSpec] = Registry("dataset")
register = DATASETS.register


register(
    DatasetSpec(
        "pbmc68k",
        "700 PBMCs x 765 genes shipped with scanpy (pbmc68k_reduced); labels bulk_labels or louvain",
        "bulk_labels",
        _pbmc68k,
        tune_label_key="louvain",
    )
)
register(
    DatasetSpec(
        "pbmc3k",
        "the study's data: 2,638 PBMCs x 13,714 genes, downloaded once and cached; labels cell_type",
        PBMC3K_LABEL_KEY,
        load_pbmc3k,
        offline=False,
        native_preprocess="study",
        load_counts=load_pbmc3k_counts,
        has_counts=True,
    )
)
register(
    DatasetSpec(
        "pbmc68k_counts",
        "the real UMI counts behind pbmc68k (700 PBMCs x 765 genes), recovered from scanpy's raw values; "
        "raw counts, so 'standard' preprocessing by default; labels bulk_labels or louvain",
        "bulk_labels",
        pbmc68k_counts,
        tune_label_key="louvain",
        has_counts=True,
    )
)
register(
    DatasetSpec(
        "synthetic",
        "300 cells x 60 genes in 4 Gaussian clusters, for tests (--cells, --genes resize it)",
        "cluster",
        _synthetic,
        sized=True,
    )
)
register(
    DatasetSpec(
        "synthetic_counts",
        "negative-binomial counts of 12 cell types with marker genes, 10,000 cells x 2,000 genes "
        "(--cells, --genes resize it); raw counts, so 'standard' preprocessing by default",
        "cell_type",
        _synthetic_counts,
        sized=True,
        has_counts=True,
    )
)
register(
    DatasetSpec(
        "digits",
        "scikit-learn's handwritten digits, 1,797 x 61 scaled pixels: a second real labelled set, offline",
        "digit",
        lambda label_key: (
            load_digits_dataset() if label_key is None else load_digits_dataset().with_label_key(label_key)
        ),
    )
)


def datasets_with_counts() -> list[str]:
    return [spec.name for spec in DATASETS.values() if spec.has_counts]


def require_counts(dataset: Dataset, model: str) -> Matrix:
    """The dataset's raw counts, or one sentence naming the datasets that have them."""
    counts = dataset.counts
    if counts is None:
        raise no_counts_error(model, dataset.name)
    return counts


def no_counts_error(model: str, data_name: str) -> VaebenchError:
    return VaebenchError(
        f"{model} models raw counts, which {data_name} does not have; run it on a dataset with counts "
        f"({', '.join(datasets_with_counts())}) or on your own .h5ad with integer X or layers['counts'], "
        "a 10x folder or an integer CSV."
    )


def get_dataset_spec(name: str) -> DatasetSpec:
    """The registered dataset called ``name``; an unknown name is answered with the known ones."""
    return DATASETS.lookup(name)
