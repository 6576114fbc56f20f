"""Embeddings made elsewhere, read from a file so they can be scored with the same protocol.

Two forms are read: a CSV with cell ids in its first column, one numeric column per dimension and the
label column; or an ``.h5ad`` whose ``obsm[KEY]`` holds the embedding and whose ``obs`` the labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vaebench.errors import VaebenchError


@dataclass(frozen=True)
class ExternalEmbedding:
    """An embedding with its cells' ids and labels, in the file's order."""

    source: str
    cell_ids: np.ndarray
    latent: np.ndarray
    labels: np.ndarray
    label_column: str

    def content_hash(self) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(self.latent).tobytes())
        digest.update("\x1f".join(map(str, self.cell_ids)).encode())
        digest.update("\x1f".join(map(str, self.labels)).encode())
        return digest.hexdigest()[:16]


def _label_error(column: str, present: list[str], where: str) -> VaebenchError:
    return VaebenchError(
        f"Label column {column!r} is not in {where}; its columns are: {', '.join(present) or '(none)'}."
    )


def read_embedding_csv(path: Path, label_column: str) -> ExternalEmbedding:
    try:
        table = pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        raise VaebenchError(
            f"{path} could not be read as a CSV table ({str(error).splitlines()[0]})."
        ) from None
    if label_column not in table.columns:
        raise _label_error(label_column, [str(c) for c in table.columns], str(path))
    dims = table.drop(columns=[label_column])
    if dims.shape[1] == 0:
        raise VaebenchError(f"{path} has no embedding columns besides the cell ids and {label_column!r}.")
    numeric = dims.apply(pd.to_numeric, errors="coerce")
    bad = [str(c) for c in dims.columns if numeric[c].isna().any() and not dims[c].isna().any()]
    if bad:
        raise VaebenchError(f"{path} is not a numeric embedding: column(s) {', '.join(bad[:5])} hold text.")
    return ExternalEmbedding(
        source=str(path),
        cell_ids=table.index.astype(str).to_numpy(),
        latent=numeric.to_numpy(dtype=np.float64),
        labels=table[label_column].astype(str).to_numpy(),
        label_column=label_column,
    )


def read_embedding_h5ad(path: Path, label_column: str, obsm: str | None) -> ExternalEmbedding:
    import anndata

    try:
        adata = anndata.read_h5ad(path, backed=None)
    except Exception as error:  # h5py and anndata raise many types for a file that is not theirs
        raise VaebenchError(f"{path} could not be read as an .h5ad file ({type(error).__name__}).") from None
    keys = list(adata.obsm.keys())
    if obsm is None:
        raise VaebenchError(
            f"Name the embedding in {path} with --obsm; its obsm keys are: {', '.join(keys) or '(none)'}."
        )
    if obsm not in adata.obsm:
        raise VaebenchError(
            f"obsm key {obsm!r} is not in {path}; its obsm keys are: {', '.join(keys) or '(none)'}."
        )
    if label_column not in adata.obs.columns:
        raise _label_error(label_column, [str(c) for c in adata.obs.columns], f"the obs of {path}")
    latent = np.asarray(adata.obsm[obsm], dtype=np.float64)
    return ExternalEmbedding(
        source=str(path),
        cell_ids=adata.obs_names.astype(str).to_numpy(),
        latent=latent.reshape(latent.shape[0], -1),
        labels=adata.obs[label_column].astype(str).to_numpy(),
        label_column=label_column,
    )


def read_embedding(path: str | Path, label_column: str, obsm: str | None = None) -> ExternalEmbedding:
    """Read an embedding from a CSV or ``.h5ad`` file; every problem is one :class:`VaebenchError` sentence."""
    path = Path(path)
    if not path.exists():
        raise VaebenchError(f"No such file: {path}.")
    if path.is_dir():
        raise VaebenchError(f"{path} is a folder; give a CSV or .h5ad file holding the embedding.")
    if path.suffix == ".h5ad":
        embedding = read_embedding_h5ad(path, label_column, obsm)
    else:
        embedding = read_embedding_csv(path, label_column)
    if embedding.latent.shape[0] < 2:
        raise VaebenchError(f"{path} holds {embedding.latent.shape[0]} cell(s); at least two are needed.")
    if not np.isfinite(embedding.latent).all():
        raise VaebenchError(f"{path} has NaN or infinite values in its embedding.")
    return embedding
