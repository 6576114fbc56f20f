"""Users' own data: ``.h5ad`` files, 10x matrix folders and CSV tables.

Labels are optional: a 10x folder without ``--labels``, a CSV matrix of numbers only, an ``.h5ad`` without
an annotation column, or any of them with ``--label-key none``, is read without labels.

Orientation and cell order are checked, not assumed: with a labels file, its cell ids are matched against
the matrix's row index and its column header, the matching axis is the cells, and the labels are put in
the matrix's cell order. The study's own export (a genes x cells CSV with gene names in the first column,
and a labels CSV with cell ids in the first column) is read this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vaebench.data.anndata_io import COUNTS_LAYER, checked_counts, dataset_from_parts, resolve_label_key
from vaebench.data.dataset import NO_LABELS, Dataset
from vaebench.data.matrix import Matrix, as_matrix
from vaebench.data.stored import StoredCsr, is_stored_csr
from vaebench.errors import VaebenchError

TENX_MATRIX = ("matrix.mtx", "matrix.mtx.gz")
TENX_GENES = ("features.tsv", "features.tsv.gz", "genes.tsv", "genes.tsv.gz")
TENX_BARCODES = ("barcodes.tsv", "barcodes.tsv.gz")


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).exists()), None)


@dataclass
class H5adParts:
    """What vaebench reads of an ``.h5ad``: annotations, the matrix and its counts layer (CSR ones kept in
    the file, :class:`~vaebench.data.stored.StoredCsr`; any other read whole)."""

    obs: pd.DataFrame
    var: pd.DataFrame
    uns: dict[str, Any]
    X: Matrix
    counts: Matrix | None


def h5ad_parts(path: Path) -> H5adParts:
    """The parts of the ``.h5ad`` at ``path``; a file that is not one gets a :class:`VaebenchError`."""
    import anndata
    import h5py
    from anndata.io import read_elem

    try:
        with h5py.File(path, "r") as file:
            if is_stored_csr(file.get("X")):
                obs, var = read_elem(file["obs"]), read_elem(file["var"])
                uns = read_elem(file["uns"]) if "uns" in file else {}
                has_counts = is_stored_csr(file.get(f"layers/{COUNTS_LAYER}"))
                counts = StoredCsr(path, f"layers/{COUNTS_LAYER}") if has_counts else None
                return H5adParts(obs, var, uns, StoredCsr(path, "X"), counts)
        adata = anndata.read_h5ad(path)
    except Exception as error:  # h5py and anndata raise many types for a file that is not theirs
        raise VaebenchError(f"{path} could not be read as an .h5ad file ({type(error).__name__}).") from None
    counts = adata.layers.get(COUNTS_LAYER)
    counts = as_matrix(counts, f"layers['{COUNTS_LAYER}'] of {path.stem}") if counts is not None else None
    return H5adParts(adata.obs, adata.var, dict(adata.uns), as_matrix(adata.X, path.stem), counts)


def read_h5ad(path: Path, label_key: str | None) -> Dataset:
    """An ``.h5ad`` file. A sparse (CSR) matrix stays in the file, read a block of cells at a time
    (:class:`~vaebench.data.stored.StoredCsr`: its annotations are read, not its values), and so does a CSR
    ``layers["counts"]``; any other matrix is read whole."""
    parts = h5ad_parts(path)
    counts = checked_counts(parts.counts, path.stem) if parts.counts is not None else None
    return dataset_from_parts(
        parts.obs, parts.var.index, parts.X, counts, path.stem, label_key, description=f"AnnData file {path}"
    )


def read_labels(path: Path, label_key: str | None) -> tuple[pd.Series, str]:
    """A labels CSV: cell ids in its first column, one or more label columns."""
    if not path.exists():
        raise VaebenchError(f"No such labels file: {path}.")
    try:
        table = pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise VaebenchError(
            f"{path} could not be read as a labels CSV ({str(error).splitlines()[0]})."
        ) from None
    if table.shape[1] == 0:
        raise VaebenchError(f"Labels file {path} has no label column besides the cell ids.")
    key = resolve_label_key(table, label_key, None, str(path))
    if key not in table.columns:
        raise VaebenchError(
            f"Label column {key!r} is not in {path}; its columns are: {', '.join(map(str, table.columns))}."
        )
    labels = table[key]
    labels.index = labels.index.astype(str)
    if labels.index.has_duplicates:
        raise VaebenchError(f"Labels file {path} lists some cell ids more than once.")
    return labels, key


def align_labels(labels: pd.Series, cell_ids: np.ndarray, source: str) -> np.ndarray:
    """The labels in the order of ``cell_ids``; every cell must have exactly one."""
    missing = [c for c in cell_ids if c not in labels.index]
    if missing:
        raise VaebenchError(
            f"{len(missing)} cell(s) of {source} have no label (for example {', '.join(missing[:3])})."
        )
    extra = len(labels) - len(cell_ids)
    if extra > 0:
        raise VaebenchError(f"The labels file lists {extra} cell(s) that are not in {source}.")
    return labels.loc[list(cell_ids)].astype(str).to_numpy()


def read_10x(folder: Path, labels_path: Path | None, label_key: str | None) -> Dataset:
    """A 10x Genomics matrix folder (matrix.mtx, features/genes.tsv, barcodes.tsv; gzipped or not)."""
    matrix, genes, barcodes = (
        _first(folder, TENX_MATRIX),
        _first(folder, TENX_GENES),
        _first(folder, TENX_BARCODES),
    )
    if matrix is None or genes is None or barcodes is None:
        raise VaebenchError(
            f"{folder} is not a 10x matrix folder: it needs matrix.mtx, features.tsv (or genes.tsv) and barcodes.tsv."
        )
    import scipy.io

    try:
        counts = scipy.io.mmread(matrix).T.tocsr()  # 10x stores genes x cells
        gene_table = pd.read_csv(genes, sep="\t", header=None)
        cell_ids = pd.read_csv(barcodes, sep="\t", header=None)[0].astype(str).to_numpy()
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise VaebenchError(
            f"{folder} could not be read as a 10x matrix ({str(error).splitlines()[0]})."
        ) from None
    gene_names = gene_table[1 if gene_table.shape[1] > 1 else 0].astype(str).to_numpy()
    if counts.shape != (len(cell_ids), len(gene_names)):
        raise VaebenchError(
            f"{folder}: the matrix is {counts.shape[1]} x {counts.shape[0]} but there are {len(gene_names)} genes "
            f"and {len(cell_ids)} barcodes."
        )
    if labels_path is None or label_key == NO_LABELS:
        key, obs = None, pd.DataFrame(index=range(len(cell_ids)))
    else:
        labels, key = read_labels(labels_path, label_key)
        obs = pd.DataFrame({key: align_labels(labels, cell_ids, str(folder))})
    return Dataset(
        folder.name,
        as_matrix(counts, str(folder)),
        obs,
        key,
        cell_ids,
        gene_names,
        f"10x folder {folder}",
    )


def read_csv_matrix(path: Path, labels_path: Path | None, label_key: str | None) -> Dataset:
    """A CSV matrix: cells x genes with a label column, or either orientation with a labels CSV."""
    sep = "\t" if path.suffix in (".tsv",) or path.name.endswith(".tsv.gz") else ","
    try:
        table = pd.read_csv(path, index_col=0, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        raise VaebenchError(
            f"{path} could not be read as a CSV matrix ({str(error).splitlines()[0]})."
        ) from None
    table.index = table.index.astype(str)
    table.columns = table.columns.astype(str)
    label_values: np.ndarray | None = None
    key: str | None = None
    if labels_path is not None and label_key != NO_LABELS:
        labels, key = read_labels(labels_path, label_key)
        ids = set(labels.index)
        rows_match, cols_match = sum(i in ids for i in table.index), sum(c in ids for c in table.columns)
        if cols_match > rows_match:
            table = table.T  # genes x cells, as the study's export
        elif rows_match == 0:
            raise VaebenchError(f"None of the cell ids in {labels_path} appear as rows or columns of {path}.")
        label_values = align_labels(labels, table.index.to_numpy(), str(path))
    elif label_key is None or label_key == NO_LABELS:
        text = [str(c) for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
        if label_key == NO_LABELS:  # annotations the user chose not to score against: not expression
            table = table.drop(columns=text)
        elif text:  # a column of names among the numbers: the labels, most likely
            raise VaebenchError(
                f"Name the label column of {path} with --label-key (its text columns: {', '.join(text[:5])}), "
                f"or give a labels CSV with --labels, or pass --label-key {NO_LABELS} to score without labels."
            )
    else:
        if label_key not in table.columns:
            raise VaebenchError(
                f"Label column {label_key!r} is not in {path}; its columns are: "
                f"{', '.join(list(table.columns)[:12])}{' ...' if table.shape[1] > 12 else ''}."
            )
        key = label_key
        label_values = table.pop(label_key).astype(str).to_numpy()
    numeric = table.apply(pd.to_numeric, errors="coerce")
    text_cells = numeric.isna().to_numpy() & table.notna().to_numpy()
    if text_cells.any() or table.shape[1] == 0:
        raise VaebenchError(
            f"{path} is not a numeric matrix: it holds text where expression values should be."
        )
    obs = pd.DataFrame(index=range(table.shape[0])) if key is None else pd.DataFrame({key: label_values})
    return Dataset(
        path.name.split(".")[0],
        numeric.to_numpy(dtype=np.float32),
        obs,
        key,
        table.index.to_numpy(),
        table.columns.to_numpy(),
        f"CSV matrix {path}",
    )


def read_path(path: str | Path, label_key: str | None, labels_path: str | Path | None) -> Dataset:
    """Read the user's data at ``path``, dispatching on what it is."""
    path = Path(path)
    labels = Path(labels_path) if labels_path is not None else None
    if not path.exists():
        raise VaebenchError(f"No such file or folder: {path}.")
    if path.is_dir():
        return read_10x(path, labels, label_key)
    if path.suffix == ".h5ad":
        return read_h5ad(path, label_key)
    if path.name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")):
        return read_csv_matrix(path, labels, label_key)
    raise VaebenchError(
        f"{path} is not a format vaebench reads: use .h5ad, .csv, .tsv or a 10x matrix folder."
    )
