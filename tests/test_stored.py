"""A sparse .h5ad read and prepared a block of cells at a time: the same prepared data as in memory, to the
bit; the matrix left in its file when it is large (or when asked), read back by rows as the matrix in
memory would give them; and one-sentence answers for bad values found on the way."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tests.helpers import invoke
from vaebench.config import RunConfig
from vaebench.data.files import read_h5ad
from vaebench.data.matrix import as_matrix, digest
from vaebench.data.prepare_stored import prepare_standard_stored
from vaebench.data.preprocess import preprocess
from vaebench.data.source import DataSource, held_bytes, in_memory
from vaebench.data.stored import StoredCsr, write_h5ad_blocks
from vaebench.data.synthetic import SyntheticCounts, make_synthetic_counts
from vaebench.errors import VaebenchError


def write_counts(path: Path, n_cells: int = 900, n_genes: int = 600, *, empty_cell: bool = False) -> None:
    """Raw counts written as the generator makes them, in blocks (the way a large file is written)."""
    source = SyntheticCounts(n_cells, n_genes, n_types=4, seed=2)

    def blocks():  # type: ignore[no-untyped-def]
        for i, block in enumerate(source.blocks(250)):
            if empty_cell and i == 1:
                block = block.tolil()
                block[3, :] = 0  # a cell without counts: scanpy's warning, a zero row
                block = sp.csr_matrix(block)
                block.eliminate_zeros()
            yield {"X": block}

    obs = source.obs().set_index(pd.Index(source.cell_ids()))
    write_h5ad_blocks(path, obs, pd.DataFrame(index=source.gene_names()), blocks())


def assert_same_csr(a: sp.csr_matrix, b: sp.csr_matrix) -> None:
    for part in ("data", "indices", "indptr"):
        x, y = getattr(a, part), getattr(b, part)
        assert x.dtype == y.dtype and np.array_equal(x, y), part


@pytest.mark.parametrize("cells_per_block", [250, 333, 5000])
def test_standard_preparation_from_the_file_is_the_in_memory_one_to_the_bit(
    tmp_path: Path, cells_per_block: int
) -> None:
    write_counts(tmp_path / "c.h5ad", empty_cell=True)
    raw = read_h5ad(tmp_path / "c.h5ad", "cell_type")
    assert raw.is_stored  # a sparse .h5ad is not read whole
    with pytest.warns(UserWarning, match="zero counts"):
        expected = preprocess(in_memory(raw), "standard", n_top_genes=150)
    with pytest.warns(UserWarning, match="zero counts"):  # said once, as scanpy says it
        prepare_standard_stored(raw, 150, tmp_path / "p.h5ad", {}, cells=cells_per_block)
    prepared = anndata.read_h5ad(tmp_path / "p.h5ad")  # an ordinary .h5ad for anndata
    assert_same_csr(as_matrix(prepared.X, ""), expected.X)
    assert_same_csr(as_matrix(prepared.layers["counts"], ""), expected.raw_counts)
    assert list(prepared.var_names) == list(expected.gene_names)
    assert list(prepared.obs_names) == list(expected.cell_ids)


def test_a_source_gives_the_same_dataset_held_or_streamed(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VAEBENCH_DATA_DIR", str(tmp_path / "cache"))
    write_counts(tmp_path / "c.h5ad")
    raw = in_memory(read_h5ad(tmp_path / "c.h5ad", "cell_type"))
    before = preprocess(raw, "standard", n_top_genes=120)  # what vaebench prepared before streaming
    source = DataSource(path=str(tmp_path / "c.h5ad"), label_key="cell_type", n_top_genes=120)
    held = source.load()  # small: held in memory, as before
    streamed = DataSource(**{**source.__dict__, "stream": "always"}).load()
    never = DataSource(**{**source.__dict__, "stream": "never"}).load()
    assert not held.is_stored and not never.is_stored and held.provenance["streamed"] is False
    assert streamed.is_stored and isinstance(streamed.raw_counts, StoredCsr)
    assert streamed.provenance["streamed"] is True and streamed.provenance["cache"] == "hit"
    assert held.content_hash() == streamed.content_hash() == never.content_hash() == before.content_hash()
    assert_same_csr(held.X, before.X)
    assert_same_csr(in_memory(streamed).raw_counts, before.raw_counts)
    assert held_bytes(streamed) == held_bytes(held) > 0
    # The default is not written among a run's settings (hashes stay as they were); a choice is.
    assert "stream" not in RunConfig.of(model="beta_vae").params()
    assert RunConfig.of(model="beta_vae", stream="always").params()["stream"] == "always"
    with pytest.raises(VaebenchError, match="Unknown --stream 'sometimes'"):
        DataSource(stream="sometimes")


def test_stored_rows_are_the_rows_of_the_matrix_in_memory(tmp_path: Path) -> None:
    counts = make_synthetic_counts(700, 90, n_types=3, seed=4)
    obs = counts.obs.set_index(pd.Index(counts.cell_ids))
    blocks = ({"X": counts.X[i : i + 128]} for i in range(0, 700, 128))
    write_h5ad_blocks(tmp_path / "m.h5ad", obs, pd.DataFrame(index=counts.gene_names), blocks)
    stored, whole = StoredCsr(tmp_path / "m.h5ad"), counts.X
    assert stored.shape == whole.shape and stored.nnz == whole.nnz
    assert_same_csr(stored.to_memory(), whole)
    assert_same_csr(stored[10:300], whole[10:300])
    assert_same_csr(stored[5:600:7], whole[5:600:7])
    rows = np.array([699, 3, 4, 5, 3, 0, -1, 250])  # any order, repeats, from the end
    assert_same_csr(stored[rows], whole[rows])
    mask = np.zeros(700, dtype=bool)
    mask[[1, 2, 400]] = True
    assert_same_csr(stored[mask], whole[mask])
    assert [first for first, _ in stored.blocks(300)] == [0, 300, 600]
    with pytest.raises(IndexError):
        stored[np.array([700])]
    again = pickle.loads(pickle.dumps(stored))  # a worker process reopens the file
    assert_same_csr(again[rows], whole[rows])
    hashes = []
    for matrix in (stored, whole):
        h = hashlib.sha256()
        digest(matrix, h)
        hashes.append(h.hexdigest())
    assert hashes[0] == hashes[1]  # a run's data hash does not depend on where the data are held
    assert stored.value_summary().is_raw_counts


def test_bad_values_in_a_large_file_get_one_sentence(tmp_path: Path) -> None:
    write_counts(tmp_path / "c.h5ad", 300, 100)
    with h5py.File(tmp_path / "c.h5ad", "a") as file:
        file["X/data"][5] = np.nan
    answer = invoke("run", "--model", "pca", "--data", "c.h5ad", "--label-key", "cell_type", cwd=tmp_path)
    assert answer.returncode != 0 and "NaN or infinite" in answer.stderr
    assert "Traceback" not in answer.stderr

    write_counts(tmp_path / "v.h5ad", 300, 100)
    with h5py.File(tmp_path / "v.h5ad", "a") as file:
        file["X/data"][:] = file["X/data"][:] / 3.0  # not counts
    refused = invoke(
        "run", "--model", "pca", "--data", "v.h5ad", "--preprocess", "standard", "--stream", "always",
        "--label-key", "cell_type", cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode != 0 and "needs raw counts" in refused.stderr
    assert "Traceback" not in refused.stderr
    wrong = invoke("run", "--data", "c.h5ad", "--stream", "maybe", cwd=tmp_path)
    assert wrong.returncode == 2 and "Unknown --stream 'maybe'" in wrong.stderr


def test_a_count_model_and_pca_run_on_a_streamed_file(tmp_path: Path, tracking_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    write_counts(tmp_path / "c.h5ad", 600, 300)
    common = ["--data", "c.h5ad", "--label-key", "cell_type", "--stream", "always", "--epochs", "2"]
    common += ["--no-tsne-3d", "--tsne-cells", "150", "--n-init", "2", "--metrics", "nmi,trustworthiness"]
    for model in ("nb_vae", "pca"):  # trained on the stored counts; fitted on the matrix read whole
        answer = invoke("run", "--model", model, *common, cwd=tmp_path)
        assert answer.returncode == 0, answer.stderr
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("vaebench").experiment_id])
    assert len(runs) == 2
    for run in runs:
        assert run.data.params["dataset.streamed"] == "True" and run.data.params["stream"] == "always"
        assert 0 <= run.data.metrics["tsne_kmeans.nmi"] <= 1
        assert 0 <= run.data.metrics["structure.trustworthiness"] <= 1  # the input's rows read from the file


def test_counts_drawn_by_inversion_follow_the_generators_negative_binomials() -> None:
    source = SyntheticCounts(4000, 300, n_types=3, seed=7)
    by_inversion = sp.vstack([source.block_by_inversion(i, 1000) for i in range(4)]).toarray()
    gamma_poisson = sp.vstack(list(SyntheticCounts(4000, 300, n_types=3, seed=7).blocks(1000))).toarray()
    assert np.array_equal(source.block_by_inversion(2, 1000).toarray(), by_inversion[2000:3000])
    assert not np.array_equal(by_inversion[:1000], by_inversion[1000:2000])
    assert np.all(by_inversion == np.round(by_inversion)) and by_inversion.min() >= 0
    # The same distribution, gene by gene: the share of zeros and the mean of the expressed genes.
    zeros = (by_inversion == 0).mean(axis=0), (gamma_poisson == 0).mean(axis=0)
    assert np.abs(zeros[0] - zeros[1]).max() < 0.05
    expressed = gamma_poisson.mean(axis=0) > 1
    ratio = by_inversion.mean(axis=0)[expressed] / gamma_poisson.mean(axis=0)[expressed]
    assert expressed.sum() > 20 and np.median(np.abs(ratio - 1)) < 0.05
