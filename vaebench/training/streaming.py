"""Training on a matrix that stays on disk: mini-batches drawn a buffer of blocks of cells at a time.

A prepared matrix too large to hold in memory reaches the training loop as a
:class:`~vaebench.data.stored.StoredCsr` (a CSR matrix in an ``.h5ad`` file). :class:`StreamedRows` is what
the loop trains on then: it hands out shuffled mini-batches as the block-sampling loaders of the field do
(scDataset: D'Ascenzo & Cultrera di Montesano 2025, "scDataset: Scalable Data Loading for Deep Learning on
Large-Scale Single-Cell Omics", arXiv:2506.01883), and consecutive rows for
:func:`~vaebench.training.loop.encode`, so memory stays flat in the number of cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from vaebench.data.stored import consecutive_runs

if TYPE_CHECKING:
    from vaebench.data.stored import StoredCsr


def dense_on(block: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """Rows of a CSR matrix as a dense float32 tensor on ``device``: the one mini-batch made dense."""
    dense = block.toarray()
    if dense.dtype != np.float32:
        dense = dense.astype(np.float32)
    return torch.from_numpy(dense).to(device, non_blocking=True)


class StreamedRows:
    """A CSR matrix on disk that hands out dense float32 rows on ``device``: mini-batches and row blocks.

    Why: a million cells do not fit in memory as a dense matrix, and reading one shuffled cell at a time from
    a file is a random read per cell. :meth:`batches` instead cuts the file's cells into blocks of
    ``block_cells`` consecutive cells, takes the blocks in a shuffled order, reads ``buffer_blocks`` of them
    at a time (in file order within the group, runs of adjacent blocks in one read, so the I/O is
    sequential) into a buffer, shuffles the buffer's cells and cuts mini-batches from it: the block sampling
    of scDataset (D'Ascenzo & Cultrera di Montesano 2025, arXiv:2506.01883). Memory holds one buffer
    (``block_cells * buffer_blocks`` cells of CSR, twice that for a moment while it is assembled and
    shuffled), the few rows carried over and the dense batch in hand, whatever the number of cells.

    What it costs: the mixing is within a buffer, not across the whole file. A mini-batch holds cells of
    ``buffer_blocks`` blocks drawn from random places of the file, but the cells of one block always share
    a buffer, and cells of two buffers never meet in a batch (but for the few rows carried over). A file
    sorted by cell type or sample therefore gives batches less varied than a full shuffle would, the more
    so the fewer cells a buffer holds (``block_cells * buffer_blocks``, 16,384 by default). The paper bounds
    this loss of minibatch diversity and finds training on such batches matches true random sampling on its
    classification tasks.

    A slice ``streamed[a:b]`` (what :func:`~vaebench.training.loop.encode` and
    :func:`~vaebench.training.loop.posterior_moments` read) is rows ``a`` to ``b`` read from the file.
    """

    def __init__(
        self, matrix: StoredCsr, device: torch.device, block_cells: int = 512, buffer_blocks: int = 32
    ) -> None:
        if block_cells < 1 or buffer_blocks < 1:
            raise ValueError("block_cells and buffer_blocks must be at least 1.")
        self.matrix = matrix
        self.device = device
        self.shape: tuple[int, int] = tuple(matrix.shape)  # type: ignore[assignment]
        self.block_cells = block_cells
        self.buffer_blocks = buffer_blocks

    def __repr__(self) -> str:
        blocks = f"block_cells={self.block_cells}, buffer_blocks={self.buffer_blocks}"
        return f"StreamedRows({self.matrix!r}, {blocks})"

    def __getitem__(self, rows: slice) -> torch.Tensor:
        if not isinstance(rows, slice):
            raise TypeError("StreamedRows reads slices of rows only; train with batches().")
        start, stop, step = rows.indices(self.shape[0])
        if step != 1:
            raise ValueError("StreamedRows reads consecutive rows only (a slice with step 1).")
        return dense_on(self.matrix.rows(start, stop), self.device)

    def _read_blocks(self, blocks: np.ndarray, carried: sp.csr_matrix) -> sp.csr_matrix:
        """The rows carried over, then the cells of ``blocks`` (sorted), each run of adjacent blocks one
        read of the file."""
        parts = [carried] if carried.shape[0] else []
        for first, stop in consecutive_runs(blocks):
            parts.append(self.matrix.rows(first * self.block_cells, stop * self.block_cells))
        return parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")

    def batches(self, batch_size: int, seed: int, epoch: int) -> Iterator[torch.Tensor]:
        """One epoch of shuffled mini-batches (dense float32 on ``device``): every cell exactly once, every
        batch ``batch_size`` cells but the epoch's last.

        The order is drawn from ``np.random.default_rng([seed, epoch])``: an epoch's order depends on the
        seed and the epoch's number only, so the same seed repeats the run. The rows left at the end of a
        buffer (fewer than a batch) go into the next buffer, shuffled with its cells.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1.")
        rng = np.random.default_rng([seed, epoch])
        n_blocks = -(-self.shape[0] // self.block_cells)
        order = rng.permutation(n_blocks)
        carried = self.matrix.rows(0, 0)
        for first in range(0, n_blocks, self.buffer_blocks):
            buffer = self._read_blocks(np.sort(order[first : first + self.buffer_blocks]), carried)
            # Permute the buffer once (one pass over its values), then cut batches as consecutive rows.
            buffer = buffer[rng.permutation(buffer.shape[0])]
            n_rows = buffer.shape[0]
            last = first + self.buffer_blocks >= n_blocks
            whole = n_rows if last else n_rows - n_rows % batch_size
            for start in range(0, whole, batch_size):
                yield dense_on(buffer[start : min(start + batch_size, whole)], self.device)
            carried = buffer[whole:]
            del buffer
