"""A CSR matrix kept in an ``.h5ad`` file and read a block of cells at a time.

anndata stores a sparse matrix as an HDF5 group of three arrays (``data``, ``indices``, ``indptr``; the
"csr_matrix" encoding of Virshup et al. 2024, "anndata: access and store annotated data matrices", JOSS 9).
:class:`StoredCsr` reads such a group: only ``indptr`` (8 bytes a cell) is held in memory, and any run of
cells is two contiguous reads of the file. It is how vaebench reads a large raw-count file while preparing
it, and how a run streams a prepared matrix too large to hold (:mod:`vaebench.training.streaming`).
:class:`CsrWriter` appends blocks of cells to such a group, so a prepared matrix is written without ever
being whole in memory, in a file that ``anndata.read_h5ad`` reads like any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

CSR_ENCODING = {"encoding-type": "csr_matrix", "encoding-version": "0.1.0"}
CHUNK_VALUES = 1 << 18  # HDF5 chunks of 256 Ki values: 1 MB of float32, read whole by any block of cells


class ValueSummary:
    """The non-finite count, range and integrality of a matrix's values, added up a chunk at a time."""

    def __init__(self) -> None:
        self.size = 0
        self.non_finite = 0
        self.minimum = np.inf
        self.maximum = -np.inf
        self.integral = True

    def add(self, values: np.ndarray) -> None:
        if not values.size:
            return
        finite = np.isfinite(values)
        self.size += values.size
        self.non_finite += int(values.size - finite.sum())
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))
        self.integral = self.integral and bool(np.all(values == np.floor(values)))

    @property
    def holds_counts(self) -> bool:
        """Non-negative integers only (or no values): what a counts layer must hold."""
        return self.size == 0 or (not self.non_finite and self.minimum >= 0 and self.integral)

    @property
    def is_raw_counts(self) -> bool:
        """Non-negative integers, some above 1: :func:`vaebench.data.matrix.is_raw_counts`' rule."""
        return self.size > 0 and self.maximum > 1 and self.holds_counts


def consecutive_runs(values: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last + 1)`` of each run of consecutive integers in sorted, distinct ``values``: the reads
    of a file that fetch those rows (or blocks) with one read per run."""
    if not values.size:
        return []
    breaks = np.flatnonzero(np.diff(values) != 1) + 1
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(values, breaks)]


def is_stored_csr(group: Any) -> bool:
    """Whether an HDF5 object is a matrix in anndata's CSR encoding."""
    import h5py

    return isinstance(group, h5py.Group) and group.attrs.get("encoding-type") == "csr_matrix"


class StoredCsr:
    """The CSR matrix at ``group`` of the HDF5 file ``path``, read a block of rows at a time.

    It answers what vaebench asks of a matrix: ``shape``, ``dtype``, ``nnz``, rows by a slice or by an index
    array (``matrix[rows]``, a ``scipy.sparse.csr_matrix`` in the order asked), :meth:`blocks` of
    consecutive rows and, for a consumer that needs the whole, :meth:`to_memory`. The file is opened on
    first use in each process (a pickled copy reopens it), read-only.
    """

    ndim = 2
    format = "csr"

    def __init__(self, path: str | Path, group: str = "X") -> None:
        self.path, self.group = str(path), group
        self._file: Any = None
        self._summary: ValueSummary | None = None
        node = self._node()
        self.shape: tuple[int, int] = tuple(int(n) for n in node.attrs["shape"])  # type: ignore[assignment]
        self.dtype = node["data"].dtype
        self.indptr = np.asarray(node["indptr"][...])
        self.nnz = int(self.indptr[-1])

    def _node(self) -> Any:
        if self._file is None:
            import h5py

            self._file = h5py.File(self.path, "r")
        return self._file[self.group]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None}

    def __repr__(self) -> str:
        return f"StoredCsr({self.path!r}, {self.group!r}, shape={self.shape}, nnz={self.nnz})"

    def rows(self, start: int, stop: int) -> sp.csr_matrix:
        """Rows ``start`` to ``stop`` (exclusive) as an in-memory CSR matrix of the stored dtypes."""
        start, stop = max(start, 0), min(stop, self.shape[0])
        stop = max(stop, start)
        first, last = int(self.indptr[start]), int(self.indptr[stop])
        node = self._node()
        data = node["data"][first:last]
        indices = node["indices"][first:last]
        indptr = self.indptr[start : stop + 1] - first
        return sp.csr_matrix((data, indices, indptr), shape=(stop - start, self.shape[1]), copy=False)

    def take(self, rows: np.ndarray) -> sp.csr_matrix:
        """Any rows, in the order given: each run of consecutive rows among them is one read."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = np.where(rows < 0, rows + self.shape[0], rows).astype(np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.shape[0]):
            raise IndexError(f"row index out of range for a matrix of {self.shape[0]} rows")
        wanted = np.unique(rows)
        parts = [self.rows(first, stop) for first, stop in consecutive_runs(wanted)]
        block = sp.vstack(parts, format="csr") if parts else self.rows(0, 0)
        return block[np.searchsorted(wanted, rows)]

    def __getitem__(self, key: Any) -> sp.csr_matrix:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step == 1:
                return self.rows(start, stop)
            return self.take(np.arange(start, stop, step))
        if isinstance(key, int | np.integer):
            return self.rows(int(key), int(key) + 1)
        return self.take(np.asarray(key))

    def blocks(self, cells: int) -> Iterator[tuple[int, sp.csr_matrix]]:
        """``(first row, rows)`` for every run of ``cells`` consecutive rows, in order."""
        for start in range(0, self.shape[0], cells):
            yield start, self.rows(start, start + cells)

    def values(self, chunk: int = 1 << 24) -> Iterator[np.ndarray]:
        """The stored values (the non-zeros), ``chunk`` at a time, in the file's order."""
        data = self._node()["data"]
        for first in range(0, self.nnz, chunk):
            yield data[first : first + chunk]

    def value_summary(self) -> ValueSummary:
        """What the checks on a matrix's values need (non-finite values, raw counts), from one pass over
        the values, kept for the next call."""
        if self._summary is None:
            summary = ValueSummary()
            for values in self.values():
                summary.add(values)
            self._summary = summary
        return self._summary

    def to_memory(self) -> sp.csr_matrix:
        """The whole matrix in memory (what a consumer that cannot read blocks gets)."""
        return self.rows(0, self.shape[0])


class CsrWriter:
    """Appends blocks of rows to a new CSR group of an open HDF5 file, in anndata's encoding.

    Values and column indices are written as they come; ``indptr`` is written by :meth:`close`, with the
    matrix's shape. Give every block the same number of columns, ``n_cols``.
    """

    def __init__(self, parent: Any, name: str, n_cols: int, dtype: Any, index_dtype: Any = np.int32) -> None:
        self._group = parent.create_group(name)
        self._n_cols = n_cols
        options = {"maxshape": (None,), "chunks": (CHUNK_VALUES,)}
        self._data = self._group.create_dataset("data", shape=(0,), dtype=dtype, **options)
        self._indices = self._group.create_dataset("indices", shape=(0,), dtype=index_dtype, **options)
        self._indptr: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        self._nnz = 0
        self._rows = 0

    @property
    def n_rows(self) -> int:
        return self._rows

    def append(self, block: sp.csr_matrix) -> None:
        if block.shape[1] != self._n_cols:
            raise ValueError(f"a block of {block.shape[1]} columns for a matrix of {self._n_cols}")
        block = sp.csr_matrix(block)
        n = block.nnz
        for dataset, values in ((self._data, block.data), (self._indices, block.indices)):
            dataset.resize((self._nnz + n,))
            dataset[self._nnz :] = values
        self._indptr.append(block.indptr[1:].astype(np.int64) + self._nnz)
        self._nnz += n
        self._rows += block.shape[0]

    def close(self, index_dtype: Any = None) -> None:
        """Write ``indptr`` (as ``index_dtype``, default: int32 when the values' count fits, as scipy
        keeps it, else int64) and the shape."""
        indptr = np.concatenate(self._indptr)
        if index_dtype is None:
            index_dtype = np.int32 if self._nnz < np.iinfo(np.int32).max else np.int64
        self._group.create_dataset("indptr", data=indptr.astype(index_dtype))
        self._indptr = []
        self._group.attrs.update({**CSR_ENCODING, "shape": (self._rows, self._n_cols)})


def write_h5ad_blocks(
    path: str | Path,
    obs: Any,
    var: Any,
    blocks: Iterable[Mapping[str, sp.csr_matrix]],
    names: Sequence[str] = ("X",),
    uns: dict[str, Any] | None = None,
    dtype: Any = np.float32,
) -> None:
    """An ``.h5ad`` file whose matrices are written a block of cells at a time.

    Each item of ``blocks`` holds the next block of cells of every matrix in ``names`` (``"X"``, and
    ``"layers/<name>"`` for a layer), as CSR matrices of ``len(var)`` columns, so one pass over a source
    feeds them all. ``obs`` and ``var`` are DataFrames (their index: cell ids, gene names); the file is
    what ``anndata.read_h5ad`` reads, whole or backed."""
    import anndata
    import h5py

    anndata.AnnData(obs=obs, var=var, uns=uns or {}).write_h5ad(path)
    with h5py.File(path, "a") as file:
        writers = {name: CsrWriter(file, name, len(var), dtype) for name in names}
        for block in blocks:
            for name, writer in writers.items():
                writer.append(block[name])
        for name, writer in writers.items():
            if writer.n_rows != len(obs):
                raise ValueError(f"{name} got {writer.n_rows} rows for {len(obs)} cells")
            writer.close()
