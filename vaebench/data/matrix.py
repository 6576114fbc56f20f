"""Expression matrices as vaebench holds them: a dense float32 array, or a float32 CSR matrix kept sparse.

Counts from an ``.h5ad`` or a 10x folder are mostly zeros (a 10x PBMC library holds 3-8 % non-zeros), so
they stay CSR from reading to training; only a mini-batch, or a seeded sample of cells an evaluation step
needs, is made dense. Dense sources (pbmc68k, CSV) stay dense arrays, as before.

A sparse ``.h5ad`` is first a :class:`~vaebench.data.stored.StoredCsr`, read from its file a block of cells
at a time; the functions here answer for it as for the same matrix in memory (:func:`in_memory`), reading
its values a chunk at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from vaebench.data.stored import StoredCsr
from vaebench.errors import VaebenchError

Matrix = np.ndarray | sp.csr_matrix | StoredCsr


def as_matrix(matrix: object, source: str) -> Matrix:
    """Any AnnData/SciPy/NumPy matrix as float32: sparse ones as CSR, dense ones as a contiguous array."""
    if isinstance(matrix, StoredCsr):
        return matrix  # converted a block at a time as it is read, or whole by in_memory
    try:
        if sp.issparse(matrix):
            csr = sp.csr_matrix(matrix, dtype=np.float32)
            csr.sort_indices()
            return csr
        return np.ascontiguousarray(np.asarray(matrix, dtype=np.float32))
    except (TypeError, ValueError):
        raise VaebenchError(f"{source} is not a numeric matrix.") from None


def in_memory(matrix: Matrix) -> np.ndarray | sp.csr_matrix:
    """The matrix in memory: a stored one read whole, as :func:`as_matrix` makes any other."""
    return as_matrix(matrix.to_memory(), matrix.path) if isinstance(matrix, StoredCsr) else matrix


def is_sparse(matrix: Matrix) -> bool:
    """Whether a matrix is kept sparse (in memory or in its file)."""
    return sp.issparse(matrix) or isinstance(matrix, StoredCsr)


def stored_values(matrix: Matrix) -> np.ndarray:
    """The values a matrix stores: every entry of a dense one, the non-zeros of a sparse one."""
    return matrix.data if sp.issparse(matrix) else np.asarray(matrix).ravel()


def count_non_finite(matrix: Matrix) -> int:
    if isinstance(matrix, StoredCsr):
        return matrix.value_summary().non_finite
    values = stored_values(matrix)
    return int(values.size - np.isfinite(values).sum())


def is_raw_counts(matrix: Matrix) -> bool:
    """True when every value is a non-negative integer (and some are above 1): unnormalised UMI counts."""
    if isinstance(matrix, StoredCsr):
        return matrix.value_summary().is_raw_counts
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
    if isinstance(matrix, StoredCsr):
        _digest_stored(matrix, update)
    elif sp.issparse(matrix):
        update.update(b"csr")
        for part in (matrix.indptr, matrix.indices, matrix.data):
            update.update(np.ascontiguousarray(part).data)
    else:
        update.update(np.ascontiguousarray(matrix).data)


def memory_blocks(matrix: StoredCsr, cells: int) -> Iterator[tuple[int, sp.csr_matrix]]:
    """``(first row, rows)`` of a stored matrix, ``cells`` rows at a time, each block as :func:`as_matrix`
    makes it in memory (float32, sorted indices): what the whole matrix read into memory would hold."""
    for first, block in matrix.blocks(cells):
        yield first, as_matrix(block, matrix.path)


def _digest_stored(matrix: StoredCsr, update: hashlib._Hash, cells: int = 100_000) -> None:
    """:func:`digest` of a stored matrix a block of cells at a time: the bytes the same matrix would give in
    memory (float32 values, sorted indices, the index types scipy gives it), so a run's data hash does not
    depend on where its data are held."""
    empty = sp.csr_matrix(
        (np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(matrix.shape[0] + 1, matrix.indptr.dtype)),
        shape=matrix.shape,
    )
    index_type = as_matrix(empty, "").indptr.dtype
    update.update(b"csr")
    update.update(np.ascontiguousarray(matrix.indptr, dtype=index_type).data)
    for part in ("indices", "data"):
        for _, block in memory_blocks(matrix, cells):
            values = block.indices.astype(index_type, copy=False) if part == "indices" else block.data
            update.update(np.ascontiguousarray(values).data)


def subset(matrix: Matrix, rows: np.ndarray | None = None, cols: np.ndarray | None = None) -> Matrix:
    """Rows and/or columns of a matrix, in the same form."""
    out = matrix if rows is None else matrix[rows]
    out = out if cols is None else out[:, cols]
    return as_matrix(out, "a subset")
