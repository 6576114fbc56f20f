"""Expression matrices as vaebench holds them: a dense float32 array, or a float32 CSR matrix kept sparse.

Counts from an ``.h5ad`` or a 10x folder are mostly zeros (a 10x PBMC library holds 3-8 % non-zeros), so
they stay CSR from reading to training; only a mini-batch, or a seeded sample of cells an evaluation step
needs, is made dense. Dense sources (pbmc68k, CSV) stay dense arrays, as before.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp

from vaebench.errors import VaebenchError

Matrix = np.ndarray | sp.csr_matrix


def as_matrix(matrix: object, source: str) -> Matrix:
    """Any AnnData/SciPy/NumPy matrix as float32: sparse ones as CSR, dense ones as a contiguous array."""
    try:
        if sp.issparse(matrix):
            csr = sp.csr_matrix(matrix, dtype=np.float32)
            csr.sort_indices()
            return csr
        return np.ascontiguousarray(np.asarray(matrix, dtype=np.float32))
    except (TypeError, ValueError):
        raise VaebenchError(f"{source} is not a numeric matrix.") from None


def stored_values(matrix: Matrix) -> np.ndarray:
    """The values a matrix stores: every entry of a dense one, the non-zeros of a sparse one."""
    return matrix.data if sp.issparse(matrix) else np.asarray(matrix).ravel()


def count_non_finite(matrix: Matrix) -> int:
    values = stored_values(matrix)
    return int(values.size - np.isfinite(values).sum())


def is_raw_counts(matrix: Matrix) -> bool:
    """True when every value is a non-negative integer (and some are above 1): unnormalised UMI counts."""
    values = stored_values(matrix)
    if values.size == 0 or values.min() < 0 or values.max() <= 1:
        return False
    sample = values if values.size <= 5_000_000 else values[:: values.size // 5_000_000]
    return bool(np.all(sample == np.round(sample))) and bool(np.all(values == np.floor(values)))


def dense_rows(matrix: Matrix, rows: np.ndarray | slice) -> np.ndarray:
    """The given rows as a dense array of the matrix's dtype (a copy for a sparse matrix)."""
    block = matrix[rows]
    return block.toarray() if sp.issparse(block) else np.asarray(block)


def digest(matrix: Matrix, update: hashlib._Hash) -> None:
    """Feed the matrix's shape and values to ``update`` (equal matrices, equal digest, whatever the form)."""
    update.update(str(matrix.shape).encode())
    if sp.issparse(matrix):
        update.update(b"csr")
        for part in (matrix.indptr, matrix.indices, matrix.data):
            update.update(np.ascontiguousarray(part).data)
    else:
        update.update(np.ascontiguousarray(matrix).data)


def subset(matrix: Matrix, rows: np.ndarray | None = None, cols: np.ndarray | None = None) -> Matrix:
    """Rows and/or columns of a matrix, in the same form."""
    out = matrix if rows is None else matrix[rows]
    out = out if cols is None else out[:, cols]
    return as_matrix(out, "a subset")
