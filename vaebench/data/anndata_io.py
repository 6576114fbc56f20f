"""AnnData to :class:`Dataset`: float32 cells x genes (sparse stays sparse), the categorical annotations as
labels, and the raw counts of ``layers["counts"]`` when it holds them."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from vaebench.data.dataset import NO_LABELS, Dataset
from vaebench.data.matrix import Matrix, as_matrix, stored_values
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
    counts = as_matrix(layers[COUNTS_LAYER], f"layers['{COUNTS_LAYER}'] of {name}")
    values = stored_values(counts)
    if values.size == 0 or (values.min() >= 0 and np.array_equal(values, np.floor(values))):
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
    obs = label_columns(adata.obs)  # type: ignore[attr-defined]
    key = resolve_label_key(obs, label_key, default_label_key, name)
    if key is not None and key not in obs.columns and key in adata.obs.columns:  # type: ignore[attr-defined]
        obs[key] = adata.obs[key].astype(str).to_numpy()  # type: ignore[attr-defined]
    obs.index = obs.index.astype(str)
    return Dataset(
        name=name,
        X=as_matrix(adata.X, name),  # type: ignore[attr-defined]
        obs=obs.reset_index(drop=True),
        label_key=key,
        cell_ids=np.asarray(adata.obs_names.astype(str)),  # type: ignore[attr-defined]
        gene_names=np.asarray(adata.var_names.astype(str)),  # type: ignore[attr-defined]
        description=description,
        preprocessing=preprocessing,
        raw_counts=counts_layer(adata, name),
    )
