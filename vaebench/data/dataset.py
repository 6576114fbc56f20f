"""The in-memory dataset every model, metric and tracker works on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vaebench.data.matrix import Matrix, as_matrix, count_non_finite, is_raw_counts, is_sparse
from vaebench.data.matrix import digest as matrix_digest
from vaebench.data.stored import StoredCsr
from vaebench.errors import VaebenchError

NO_LABELS = "none"
"""The label key that says "score without labels" (``--label-key none``), for data that have annotations
the user does not want scored against; data with no label-like annotation at all have no labels anyway."""


def _needs_conversion(matrix: Matrix) -> bool:
    if isinstance(matrix, StoredCsr):
        return False  # converted a block at a time as it is read
    return matrix.dtype != np.float32 or (sp.issparse(matrix) and not isinstance(matrix, sp.csr_matrix))


@dataclass(frozen=True)
class Dataset:
    """Cells x genes as one float32 matrix, with cell ids, gene names and the cells' annotations.

    ``X`` is a dense array or, for sparse sources (``.h5ad``, 10x), a CSR matrix that is never made dense
    as a whole (:mod:`vaebench.data.matrix`), held in memory or, when it is too large to hold, read from
    its file a block of cells at a time (:class:`~vaebench.data.stored.StoredCsr`). ``preprocessing`` names what was done to the values
    (``none``, ``study``, ``standard``, or what the source did before vaebench read it).

    ``obs`` holds every per-cell annotation the source had (one row per cell, in the order of ``X``);
    ``label_key`` names the column used as ground truth for scoring, or is None for data without labels
    (most raw counts are unannotated; ``NO_LABELS`` given as the key means the same): those are scored on
    what needs no labels (:func:`vaebench.evaluate.evaluate_embedding`).

    ``raw_counts`` holds the raw counts of the same cells and genes when ``X`` was prepared from counts
    (``--preprocess standard`` or ``study``, or a ``layers["counts"]`` an ``.h5ad`` brought along): what
    count models (``nb_vae``) train on. :attr:`counts` is that matrix, or ``X`` itself when ``X`` holds
    raw counts, or None.
    """

    name: str
    X: Matrix
    obs: pd.DataFrame
    label_key: str | None
    cell_ids: np.ndarray
    gene_names: np.ndarray
    description: str = ""
    preprocessing: str = "none"
    raw_counts: Matrix | None = field(default=None, repr=False, compare=False)
    provenance: dict = field(default_factory=dict, repr=False, compare=False)
    _hash: list[str] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.label_key == NO_LABELS:
            object.__setattr__(self, "label_key", None)
        if self.X.ndim != 2:
            raise VaebenchError(f"Dataset {self.name!r} is not a 2-d cells x genes matrix.")
        if _needs_conversion(self.X):
            object.__setattr__(self, "X", as_matrix(self.X, self.name))
        n_cells, n_genes = self.X.shape
        if self.raw_counts is not None:
            if _needs_conversion(self.raw_counts):
                object.__setattr__(
                    self, "raw_counts", as_matrix(self.raw_counts, f"The counts of {self.name!r}")
                )
            if self.raw_counts.shape != self.X.shape:
                raise VaebenchError(
                    f"Dataset {self.name!r} has counts of {self.raw_counts.shape[0]} x {self.raw_counts.shape[1]} "
                    f"but a matrix of {n_cells} x {n_genes}; they must cover the same cells and genes."
                )
        if n_cells < 2:
            raise VaebenchError(f"Dataset {self.name!r} has {n_cells} cell(s); at least two are needed.")
        bad = count_non_finite(self.X)
        if bad:
            raise VaebenchError(
                f"Dataset {self.name!r} has {bad} NaN or infinite value(s) in its expression matrix."
            )
        if len(self.cell_ids) != n_cells or len(self.obs) != n_cells:
            raise VaebenchError(
                f"Dataset {self.name!r} has {n_cells} cells in its matrix but {len(self.cell_ids)} cell ids "
                f"and {len(self.obs)} annotation rows."
            )
        duplicated = pd.Index(self.cell_ids).duplicated()
        if duplicated.any():
            examples = ", ".join(map(str, pd.unique(np.asarray(self.cell_ids)[duplicated])[:3]))
            raise VaebenchError(
                f"Dataset {self.name!r} has {int(duplicated.sum())} duplicate cell id(s) (for example {examples}); "
                "each cell must have its own id."
            )
        if len(self.gene_names) != n_genes:
            raise VaebenchError(
                f"Dataset {self.name!r} has {n_genes} genes in its matrix but {len(self.gene_names)} gene names."
            )
        if self.label_key is not None:
            self._check_labels()

    def _check_labels(self) -> None:
        if self.label_key not in self.obs.columns:
            raise VaebenchError(
                f"Label column {self.label_key!r} is not in dataset {self.name!r}; "
                f"its columns are: {', '.join(map(str, self.obs.columns)) or '(none)'}."
            )
        if self.obs[self.label_key].isna().any():
            raise VaebenchError(
                f"Label column {self.label_key!r} of dataset {self.name!r} has missing values."
            )
        if self.obs[self.label_key].nunique() < 2:
            raise VaebenchError(
                f"Label column {self.label_key!r} of dataset {self.name!r} has a single class; "
                "scoring needs at least two."
            )

    @property
    def is_sparse(self) -> bool:
        return is_sparse(self.X)

    @property
    def is_stored(self) -> bool:
        """Whether the matrix is read from its file a block at a time rather than held in memory."""
        return isinstance(self.X, StoredCsr)

    @property
    def counts(self) -> Matrix | None:
        """The raw counts of these cells and genes (sparse when they were), or None when there are none."""
        if self.raw_counts is not None:
            return self.raw_counts
        return self.X if is_raw_counts(self.X) else None

    @property
    def n_cells(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_genes(self) -> int:
        return int(self.X.shape[1])

    @property
    def has_labels(self) -> bool:
        return self.label_key is not None

    @property
    def labels(self) -> np.ndarray | None:
        """The ground-truth labels as strings, one per cell; None for data without labels."""
        if self.label_key is None:
            return None
        return self.obs[self.label_key].astype(str).to_numpy()

    @property
    def label_keys(self) -> list[str]:
        """The annotation columns that could serve as labels."""
        return [str(c) for c in self.obs.columns]

    def with_label_key(self, label_key: str | None) -> Dataset:
        """The same data scored against another annotation column (None or ``NO_LABELS``: without labels)."""
        return replace(self, label_key=label_key, _hash=[], provenance=dict(self.provenance))

    def shape_profile(self) -> dict[str, int]:
        """The dataset's size as MLflow's dataset tracking shows it."""
        profile = {"num_cells": self.n_cells, "num_genes": self.n_genes}
        if self.label_key is not None:
            profile["num_classes"] = int(self.obs[self.label_key].nunique())
        if self.is_sparse:
            profile["num_nonzero"] = int(self.X.nnz)
        return profile

    def content_hash(self) -> str:
        """A short SHA-256 of the matrix, cell ids, gene names and labels: equal data, equal hash.

        Data without labels hash the rest alone (labelled data hash exactly as before labels could be absent).

        Counts a file brought beside its values (``layers["counts"]``) are hashed too; counts vaebench kept
        while preparing ``X`` (``study``, ``standard``) are not: ``X`` and the preprocessing settings, which
        are part of a run's configuration, already fix them, and hashes of earlier runs stay as they were.
        """
        if not self._hash:
            digest = hashlib.sha256()
            matrix_digest(self.X, digest)
            if self.raw_counts is not None and not self.preprocessing.startswith(("study", "standard")):
                matrix_digest(self.raw_counts, digest)
            for values in (self.cell_ids, self.gene_names, self.labels):
                if values is None:
                    continue
                digest.update("\x1f".join(map(str, values)).encode())
            self._hash.append(digest.hexdigest()[:16])
        return self._hash[0]
