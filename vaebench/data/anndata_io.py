"""AnnData to :class:`Dataset`: float32 cells x genes (sparse stays sparse), the categorical annotations as
labels, and the raw counts of ``layers["counts"]`` when it holds them."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from vaebench.data.dataset import NO_LABELS, Dataset
from vaebench.data.matrix import Matrix, as_matrix, stored_values
from vaebench.data.stored import StoredCsr
from vaebench.errors import VaebenchError

log = logging.getLogger("vaebench")
COUNTS_LAYER = "counts"


def label_columns(obs: pd.DataFrame) -> pd.DataFrame:
    """The annotation columns that can be labels: categorical, text or boolean (not numeric QC values)."""
    keep = [
        c
        for c in obs.columns
        if isinstance(obs[c].dtype, pd.CategoricalDtype)
        or obs[c].dtype == object
        or obs[c].dtype == bool
        or pd.api.types.is_string_dtype(obs[c])
    ]
    return obs[keep].copy()


def resolve_label_key(
    obs: pd.DataFrame, label_key: str | None, default: str | None, source: str
) -> str | None:
    """The label column to use: the one asked for, else the default, else the only candidate; None (no
    labels) when asked for ``NO_LABELS`` or when there is no candidate at all (unannotated data)."""
    if label_key == NO_LABELS:
        return None
    if label_key is not None:
        return label_key  # Dataset says which columns exist if it is not there
    if default is not None and default in obs.columns:
        return default
    candidates = list(obs.columns)
    if len(candidates) == 1:
        return str(candidates[0])
    if not candidates:
        return None
    raise VaebenchError(
        f"Name the label column of {source} with --label-key; its annotation columns are: "
        f"{', '.join(map(str, candidates))} (--label-key {NO_LABELS} scores it without labels)."
    )


def counts_layer(adata: object, name: str) -> Matrix | None:
    """``layers["counts"]`` as a float32 matrix when it holds raw counts (non-negative integers); a layer of
    other values is left aside with a note, since a count model cannot use it."""
    layers = getattr(adata, "layers", {})
    if COUNTS_LAYER not in layers:
        return None
    return checked_counts(as_matrix(layers[COUNTS_LAYER], f"layers['{COUNTS_LAYER}'] of {name}"), name)


def checked_counts(counts: Matrix, name: str) -> Matrix | None:
    """``counts`` when it holds non-negative integers, else None with a note."""
    if isinstance(counts, StoredCsr):
        holds_counts = counts.value_summary().holds_counts
    else:
        values = stored_values(counts)
        holds_counts = values.size == 0 or (values.min() >= 0 and np.array_equal(values, np.floor(values)))
    if holds_counts:
        return counts
    log.warning(
        "layers['%s'] of %s does not hold raw counts (non-negative integers); it is ignored.",
        COUNTS_LAYER,
        name,
    )
    return None


def dataset_from_anndata(
    adata: object,
    name: str,
    label_key: str | None,
    default_label_key: str | None = None,
    description: str = "",
    preprocessing: str = "none",
) -> Dataset:
    """A :class:`Dataset` from an AnnData object (``obs`` reduced to its label-like columns)."""
    return dataset_from_parts(
        adata.obs,  # type: ignore[attr-defined]
        adata.var_names,  # type: ignore[attr-defined]
        as_matrix(adata.X, name),  # type: ignore[attr-defined]
        counts_layer(adata, name),
        name,
        label_key,
        default_label_key,
        description,
        preprocessing,
    )


def dataset_from_parts(
    obs: pd.DataFrame,
    gene_names: pd.Index,
    X: Matrix,
    counts: Matrix | None,
    name: str,
    label_key: str | None,
    default_label_key: str | None = None,
    description: str = "",
    preprocessing: str = "none",
) -> Dataset:
    """A :class:`Dataset` from an AnnData's parts: its ``obs`` (index: the cell ids; reduced to the
    label-like columns), its gene names, matrix and counts (in memory or stored in its file)."""
    annotations = label_columns(obs)
    key = resolve_label_key(annotations, label_key, default_label_key, name)
    if key is not None and key not in annotations.columns and key in obs.columns:
        annotations[key] = obs[key].astype(str).to_numpy()
    return Dataset(
        name=name,
        X=X,
        obs=annotations.reset_index(drop=True),
        label_key=key,
        cell_ids=np.asarray(obs.index.astype(str)),
        gene_names=np.asarray(gene_names.astype(str)),
        description=description,
        preprocessing=preprocessing,
        raw_counts=counts,
    )
