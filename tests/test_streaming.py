"""Training on a matrix that stays in its file (:mod:`vaebench.training.streaming`): block-sampled epochs that
see every cell once, repeat with the seed and mix far parts of the file, and train as in-memory data do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from vaebench.data.stored import StoredCsr, write_h5ad_blocks
from vaebench.data.synthetic import make_synthetic_counts
from vaebench.models import ModelOptions, get_model
from vaebench.training.loop import (
    SparseRows,
    as_tensor,
    encode,
    epoch_batches,
    posterior_moments,
    train,
)
from vaebench.training.streaming import StreamedRows

CPU = torch.device("cpu")
N_IDS = 1001  # cells of the numbered file: not a multiple of a block, a buffer or a batch


def write_matrix(path: Path, X: sp.csr_matrix, block: int = 100) -> StoredCsr:
    obs = pd.DataFrame(index=[f"cell_{i}" for i in range(X.shape[0])])
    var = pd.DataFrame(index=[f"gene_{j}" for j in range(X.shape[1])])
    blocks = ({"X": X[start : start + block]} for start in range(0, X.shape[0], block))
    write_h5ad_blocks(path, obs, var, blocks)
    return StoredCsr(path)


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> StoredCsr:
    """Cells whose first gene holds their row number plus one, so a batch says which cells it holds."""
    rng = np.random.default_rng(0)
    X = sp.random(N_IDS, 6, density=0.4, format="csr", dtype=np.float32, random_state=rng)
    X = sp.hstack([sp.csr_matrix(np.arange(1, N_IDS + 1, dtype=np.float32)[:, None]), X], format="csr")
    return write_matrix(tmp_path_factory.mktemp("numbered") / "ids.h5ad", X)


@pytest.fixture(scope="module")
def counts(tmp_path_factory: pytest.TempPathFactory) -> StoredCsr:
    """Log-normalised synthetic counts, 600 cells x 150 genes, in a file."""
    X = make_synthetic_counts(600, 150, n_types=4, seed=3, mean_library_size=2000).X
    X = sp.csr_matrix(sp.diags(1e4 / np.asarray(X.sum(axis=1)).ravel()) @ X).astype(np.float32)
    X.data = np.log1p(X.data)
    return write_matrix(tmp_path_factory.mktemp("counts") / "counts.h5ad", X)


def cell_ids(batches: list[torch.Tensor]) -> list[np.ndarray]:
    return [batch[:, 0].numpy().astype(np.int64) - 1 for batch in batches]


@pytest.mark.parametrize("batch_size", [50, 128, 300])
def test_an_epoch_sees_every_cell_once_in_full_batches_but_the_last(
    numbered: StoredCsr, batch_size: int
) -> None:
    rows = StreamedRows(numbered, CPU, block_cells=32, buffer_blocks=4)  # buffers of 128 cells
    batches = list(rows.batches(batch_size, seed=0, epoch=1))
    assert all(batch.dtype == torch.float32 and batch.device == CPU for batch in batches)
    sizes = [batch.shape[0] for batch in batches]
    assert sizes[:-1] == [batch_size] * (len(sizes) - 1) and 0 < sizes[-1] <= batch_size
    ids = np.concatenate(cell_ids(batches))
    assert np.array_equal(np.sort(ids), np.arange(N_IDS))
    # Each batch is the dense copy of the stored rows it names.
    assert np.array_equal(batches[0].numpy(), numbered.take(cell_ids(batches[:1])[0]).toarray())


def test_an_epochs_order_is_its_seed_and_number_only(numbered: StoredCsr) -> None:
    def order(seed: int, epoch: int) -> np.ndarray:
        rows = StreamedRows(numbered, CPU, block_cells=32, buffer_blocks=4)
        return np.concatenate(cell_ids(list(rows.batches(64, seed, epoch))))

    assert np.array_equal(order(0, 1), order(0, 1))
    assert np.array_equal(order(0, 2), order(0, 2))
    assert not np.array_equal(order(0, 1), order(0, 2))
    assert not np.array_equal(order(0, 1), order(1, 1))


def test_a_batch_mixes_cells_of_blocks_from_far_parts_of_the_file(numbered: StoredCsr) -> None:
    block_cells, buffer_blocks = 32, 4
    rows = StreamedRows(numbered, CPU, block_cells=block_cells, buffer_blocks=buffer_blocks)
    batches = cell_ids(list(rows.batches(64, seed=0, epoch=1)))
    for ids in batches[:-1]:
        blocks = np.unique(ids // block_cells)
        assert len(blocks) >= 3  # a batch draws on several blocks of the buffer...
        assert not np.array_equal(np.sort(ids), np.arange(ids.min(), ids.min() + len(ids)))
    spans = [np.ptp(ids // block_cells) for ids in batches[:-1]]
    assert max(spans) > buffer_blocks  # ...which are not neighbours in the file


def test_an_epoch_reads_the_file_a_buffer_at_a_time(
    numbered: StoredCsr, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[int, int]] = []
    read = numbered.rows

    def logged(start: int, stop: int) -> sp.csr_matrix:
        reads.append((start, min(stop, N_IDS)))
        return read(start, stop)

    monkeypatch.setattr(numbered, "rows", logged)
    rows = StreamedRows(numbered, CPU, block_cells=32, buffer_blocks=4)
    for _ in rows.batches(50, seed=0, epoch=1):
        pass
    spans = [(start, stop) for start, stop in reads if stop > start]
    assert max(stop - start for start, stop in spans) <= 32 * 4  # never more than a buffer in memory
    covered = np.concatenate([np.arange(start, stop) for start, stop in spans])
    assert np.array_equal(np.sort(covered), np.arange(N_IDS))  # each cell read once an epoch


def test_in_memory_epochs_are_still_one_randperm_of_the_run_generator() -> None:
    X = torch.arange(70, dtype=torch.float32)[:, None].repeat(1, 3)
    sparse = SparseRows(sp.csr_matrix(X.numpy()), CPU)
    for rows in (X, sparse):
        shuffle, reference = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        for epoch in (1, 2):
            batches = list(epoch_batches(rows, 16, shuffle, seed=5, epoch=epoch))
            order = torch.randperm(70, generator=reference)
            assert [b.shape[0] for b in batches] == [16, 16, 16, 16, 6]
            assert torch.equal(torch.cat(batches), X[order])


def train_model(X: torch.Tensor | SparseRows | StreamedRows, epochs: int, seed: int = 0) -> tuple:
    torch.manual_seed(seed)
    model = get_model("beta_vae").build(X.shape[1], ModelOptions(latent_dim=4))
    result = train(model, X, epochs=epochs, batch_size=32, lr=1e-3, seed=seed)
    return result.losses, encode(model, X), model


def test_training_on_a_stored_matrix_repeats_with_the_seed(counts: StoredCsr) -> None:
    assert isinstance(as_tensor(counts, CPU), StreamedRows)

    def run(seed: int) -> tuple:
        streamed = StreamedRows(StoredCsr(counts.path), CPU, block_cells=16, buffer_blocks=8)
        return train_model(streamed, epochs=3, seed=seed)[:2]

    first_losses, first_codes = run(0)
    again_losses, again_codes = run(0)
    assert again_losses == first_losses  # the same seed, the same run, to the bit
    assert np.array_equal(again_codes, first_codes)
    assert run(1)[0] != first_losses


def test_encoding_a_stored_matrix_equals_encoding_it_in_memory(counts: StoredCsr) -> None:
    in_memory = as_tensor(counts.to_memory(), CPU)
    _, _, model = train_model(in_memory, epochs=1)
    streamed = as_tensor(counts, CPU)
    for batch_size in (4096, 128):
        assert np.array_equal(encode(model, streamed, batch_size), encode(model, in_memory, batch_size))
        mean, var = posterior_moments(model, streamed, batch_size)
        mean_in_memory, var_in_memory = posterior_moments(model, in_memory, batch_size)
        assert np.array_equal(mean, mean_in_memory) and np.array_equal(var, var_in_memory)


def test_streamed_training_reaches_the_loss_of_in_memory_training(counts: StoredCsr) -> None:
    streamed = StreamedRows(counts, CPU, block_cells=16, buffer_blocks=8)  # buffers of a fifth of the cells
    streamed_losses, _, _ = train_model(streamed, epochs=8)
    memory_losses, _, _ = train_model(as_tensor(counts.to_memory(), CPU), epochs=8)
    assert streamed_losses[-1] < 0.8 * streamed_losses[0]  # it learns...
    assert abs(streamed_losses[-1] - memory_losses[-1]) <= 0.1 * memory_losses[-1]  # ...as far
