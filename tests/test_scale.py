"""Real data at real sizes: sparse counts kept sparse, named preprocessing with a cache, the protocol's
subsample rule, the count generator, and the one-sentence answers for raw counts and duplicate cell ids."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from tests.helpers import invoke
from vaebench.data import load_dataset
from vaebench.data.source import DataSource
from vaebench.data.synthetic import make_synthetic_counts
from vaebench.errors import VaebenchError
from vaebench.evaluate import ProtocolSettings, evaluate_embedding
from vaebench.evaluate.subsample import stratified_sample
from vaebench.models import ModelOptions, PCAModel, get_model
from vaebench.training.loop import SparseRows, as_tensor, encode, train


def write_counts(path: Path, n_cells: int = 240, n_genes: int = 400, seed: int = 0) -> anndata.AnnData:
    data = make_synthetic_counts(n_cells, n_genes, n_types=4, seed=seed, mean_library_size=4000)
    obs = data.obs.set_index(pd.Index(data.cell_ids))
    adata = anndata.AnnData(X=data.X, obs=obs, var=pd.DataFrame(index=data.gene_names))
    adata.write_h5ad(path)
    return adata


def test_the_count_generator_gives_sparse_integer_counts_of_its_cell_types() -> None:
    first = make_synthetic_counts(300, 500, n_types=5, seed=1)
    again = make_synthetic_counts(300, 500, n_types=5, seed=1)
    other = make_synthetic_counts(300, 500, n_types=5, seed=2)
    assert first.is_sparse and first.X.shape == (300, 500)
    assert np.array_equal(first.X.data, np.round(first.X.data)) and first.X.data.min() > 0
    assert 0.01 < first.X.nnz / (300 * 500) < 0.5  # mostly zeros, as droplet counts are
    assert first.obs["cell_type"].nunique() == 5
    assert first.content_hash() == again.content_hash() != other.content_hash()
    # Marker genes make the types separable: the type means differ far beyond their noise.
    log_counts = np.log1p(first.X.toarray())
    means = pd.DataFrame(log_counts).groupby(first.labels).mean()
    assert (means.max() - means.min()).max() > 1.0


def test_h5ad_counts_stay_sparse_through_training_and_pca(tmp_path: Path) -> None:
    write_counts(tmp_path / "c.h5ad")
    dataset = load_dataset(path=tmp_path / "c.h5ad", label_key="cell_type", preprocess="standard")
    assert dataset.is_sparse
    rows = as_tensor(dataset.X, torch.device("cpu"))
    assert isinstance(rows, SparseRows)
    dense = as_tensor(dataset.X.toarray(), torch.device("cpu"))
    curves = []
    for X in (rows, dense):  # same seed, same weights: sparse input trains exactly as its dense copy
        torch.manual_seed(0)
        model = get_model("beta_vae").build(dataset.n_genes, ModelOptions(latent_dim=4))
        curves.append(train(model, X, epochs=3, batch_size=64, lr=1e-3, seed=0).losses)
        assert encode(model, X).shape == (dataset.n_cells, 4)
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-5)
    # PCA on the sparse matrix centres implicitly and finds the dense matrix's components.
    sparse_codes = PCAModel(3, 0).fit(dataset.X).encode(dataset.X)
    dense_codes = PCAModel(3, 0).fit(dataset.X.toarray()).encode(dataset.X.toarray())
    for k in range(3):
        assert abs(np.corrcoef(sparse_codes[:, k], dense_codes[:, k])[0, 1]) > 0.999


def test_each_preprocessing_mode(tmp_path: Path) -> None:
    adata = write_counts(tmp_path / "c.h5ad")
    source = DataSource(path=str(tmp_path / "c.h5ad"), label_key="cell_type")
    none = DataSource(**{**source.__dict__, "preprocess": "none"}).load()
    assert np.array_equal(none.X.toarray(), adata.X.toarray()) and none.preprocessing == "none"

    standard = DataSource(**{**source.__dict__, "preprocess": "standard", "n_top_genes": 50}).load()
    assert standard.is_sparse and standard.n_genes == 50 and standard.n_cells == 240
    assert set(standard.gene_names) <= set(adata.var_names)
    expected = np.log1p(adata[:, standard.gene_names].X.toarray() / adata.X.sum(axis=1).A * 1e4)
    np.testing.assert_allclose(standard.X.toarray(), expected, rtol=1e-4, atol=1e-5)

    scaled = DataSource(
        **{**source.__dict__, "preprocess": "standard", "n_top_genes": 50, "scale": True}
    ).load()
    assert not scaled.is_sparse
    np.testing.assert_allclose(scaled.X.mean(axis=0), 0, atol=0.05)  # centred, then clipped at 10
    assert scaled.X.max() <= 10

    study = DataSource(**{**source.__dict__, "preprocess": "study"}).load()  # the seed's Seurat steps
    assert not study.is_sparse and study.preprocessing == "study" and study.X.max() <= 10
    assert study.n_genes <= adata.n_vars and study.n_cells <= adata.n_obs

    with pytest.raises(VaebenchError, match="needs raw counts"):
        load_dataset("pbmc68k", preprocess="standard")
    with pytest.raises(VaebenchError, match="Unknown preprocessing 'log'"):
        DataSource(preprocess="log")


def test_prepared_data_are_cached_by_content_and_settings(tmp_path: Path) -> None:
    write_counts(tmp_path / "c.h5ad")
    source = DataSource(
        path=str(tmp_path / "c.h5ad"), label_key="cell_type", preprocess="standard", n_top_genes=60
    )
    first, second = source.load(), source.load()
    assert first.provenance["cache"] == "miss" and second.provenance["cache"] == "hit"
    assert "seconds.preprocess" not in second.provenance  # not prepared again
    assert first.content_hash() == second.content_hash()
    assert Path(first.provenance["cache_file"]).exists()
    # Other settings, or other content at the same path, are prepared anew.
    assert DataSource(**{**source.__dict__, "n_top_genes": 70}).load().provenance["cache"] == "miss"
    write_counts(tmp_path / "c.h5ad", seed=5)
    assert source.load().provenance["cache"] == "miss"


def test_raw_counts_without_a_preprocessing_get_standard_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_counts(tmp_path / "c.h5ad")
    with caplog.at_level(logging.WARNING, logger="vaebench"):
        dataset = load_dataset(path=tmp_path / "c.h5ad", label_key="cell_type")
    assert dataset.preprocessing.startswith("standard")
    assert "holds raw counts" in caplog.text and "--preprocess none" in caplog.text
    # Asked for explicitly, the counts are trained on as they are, without a note.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vaebench"):
        raw = load_dataset(path=tmp_path / "c.h5ad", label_key="cell_type", preprocess="none")
    assert raw.preprocessing == "none" and caplog.text == ""


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_duplicate_cell_ids_are_refused(tmp_path: Path) -> None:
    adata = write_counts(tmp_path / "c.h5ad")
    adata.obs_names = ["cell_0", *adata.obs_names[:-1]]  # cell_0 twice
    adata.write_h5ad(tmp_path / "dup.h5ad")
    with pytest.raises(VaebenchError, match=r"1 duplicate cell id\(s\) \(for example cell_0\)"):
        load_dataset(path=tmp_path / "dup.h5ad", label_key="cell_type", preprocess="none")


def test_stratified_sample_keeps_class_shares_and_is_seeded() -> None:
    labels = np.array(["a"] * 700 + ["b"] * 250 + ["c"] * 45 + ["d"] * 5)
    cells = stratified_sample(labels, 100, seed=3)
    assert cells is not None and len(cells) == 100 and len(set(cells)) == 100
    counts = pd.Series(labels[cells]).value_counts()
    assert counts["a"] == 70 and counts["b"] == 25 and 4 <= counts["c"] <= 5 and counts["d"] >= 1
    assert np.array_equal(cells, stratified_sample(labels, 100, seed=3))
    assert not np.array_equal(cells, stratified_sample(labels, 100, seed=4))
    assert stratified_sample(labels, 1000, seed=3) is None  # covers every cell: nothing is sampled


def test_the_protocol_is_unchanged_up_to_tsne_cells_and_samples_above() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], [150, 100, 50])
    latent = rng.normal(size=(300, 4)) + 3 * (labels[:, None] == np.array(["a", "b", "c", "a"]))
    base = ProtocolSettings(n_init=3, tsne_3d=False, perplexity=20)
    today = evaluate_embedding(latent, labels, base)
    at_size = evaluate_embedding(latent, labels, ProtocolSettings(**{**base.__dict__, "tsne_cells": 300}))
    assert today.metrics == at_size.metrics and at_size.map_cells is None
    assert np.array_equal(today.tsne2d, at_size.tsne2d)

    sampled = evaluate_embedding(latent, labels, ProtocolSettings(**{**base.__dict__, "tsne_cells": 120}))
    assert sampled.tsne2d.shape == (120, 2) and len(sampled.kmeans_labels) == 120
    assert sampled.sizes["eval.map_cells"] == 120
    assert pd.Series(labels[sampled.map_cells]).value_counts().to_dict() == {"a": 60, "b": 40, "c": 20}
    # Scores of the latent itself use every cell: they equal the unsampled run's.
    for name in ("latent_kmeans.ari", "latent_kmeans.nmi", "latent.silhouette"):
        assert sampled.metrics[name] == today.metrics[name]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_cli_raw_counts_note_cache_and_dataset_tracking(tmp_path: Path, tracking_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    write_counts(tmp_path / "c.h5ad")
    args = ["run", "--model", "pca", "--data", "c.h5ad", "--label-key", "cell_type", "--n-init", "3"]
    args += ["--no-tsne-3d", "--perplexity", "20", "--n-top-genes", "80"]
    first = invoke(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "holds raw counts" in first.stderr and "240 cells x 80 genes, sparse" in first.stdout.replace(
        "\n", " "
    )
    second = invoke(*args, "--seed", "1", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    client = MlflowClient(tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("vaebench").experiment_id], order_by=["start_time"]
    )
    assert [r.data.params["dataset.cache"] for r in runs] == ["miss", "hit"]
    assert all(
        r.data.params["dataset.preprocessing"] == "standard(n_top_genes=80, scale=False)" for r in runs
    )
    assert runs[0].data.params["preprocess"] == "None"  # as the user gave it; the resolved step beside it
    inputs = runs[1].inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == "c"
    assert inputs[0].dataset.digest == runs[1].data.params["dataset.hash"]
    assert '"num_cells": 240' in inputs[0].dataset.profile
    assert "data.seconds.read" in runs[1].data.metrics and "log.seconds" in runs[1].data.metrics

    dup = anndata.read_h5ad(tmp_path / "c.h5ad")
    dup.obs_names = ["cell_0", *dup.obs_names[:-1]]
    dup.write_h5ad(tmp_path / "dup.h5ad")
    refused = invoke("run", "--model", "pca", "--data", "dup.h5ad", "--label-key", "cell_type", cwd=tmp_path)
    assert refused.returncode == 2 and "duplicate cell id" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_suite_draws_the_3d_tsne_once_per_model_and_beta_without_changing_any_hash() -> None:
    from vaebench.models import get_model
    from vaebench.sets.suite import load_suite

    grid = load_suite("default").grid()
    drawn = [(c.model, c.beta, c.seed) for c in grid if c.tsne_3d]
    assert len(drawn) == len({(m, b) for m, b, _ in drawn})
    studied = {(c.model, c.beta) for c in grid if not get_model(c.model).control}
    assert {(m, b) for m, b, _ in drawn} == studied and studied
    assert all(seed == 0 for _, _, seed in drawn)
    # The 3-d map is a figure: whether it is drawn does not change what a run is (its hash).
    first = grid[0]
    assert first.config_hash("x") == first.with_settings(tsne_3d=not first.tsne_3d).config_hash("x")


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")  # scanpy's, one cell
@pytest.mark.parametrize(
    ("n_cells", "cells_per_block", "n_top_genes"),
    [(240, 1000, 50), (240, 7, 50), (1, 1, 10), (3000, 1024, 300)],
)
def test_normalising_and_the_variable_genes_are_scanpys_to_the_bit_a_block_of_cells_at_a_time(
    n_cells: int, cells_per_block: int, n_top_genes: int
) -> None:
    """Blocks that divide the cells or not, fewer cells than threads, one cell, a cell without counts and
    a gene never seen: the normalised values, the genes' statistics and the genes chosen are those of
    scanpy's normalize_total and highly_variable_genes(flavor="seurat") on the whole matrix."""
    import scanpy as sc
    from scanpy.preprocessing._utils import _get_mean_var

    from vaebench.data.blockwise import normalise_total_in_place, normalised_mean_var, seurat_variable_genes

    counts = make_synthetic_counts(max(n_cells, 2), 600, n_types=4, seed=3, mean_library_size=3000).X
    counts = counts[:n_cells].toarray()
    counts[:, 5] = 0  # a gene never seen: mean 0, no dispersion
    if n_cells > 1:
        counts[1] = 0  # a cell without counts
    adata = anndata.AnnData(X=sp.csr_matrix(counts, dtype=np.float32))
    mine = adata.X.copy()
    with pytest.warns(UserWarning, match="zero counts") if n_cells > 1 else contextlib.nullcontext():
        sc.pp.normalize_total(adata, target_sum=1e4)
    with pytest.warns(UserWarning, match="zero counts") if n_cells > 1 else contextlib.nullcontext():
        normalise_total_in_place(mine, target_sum=1e4, cells_per_block=cells_per_block)
    np.testing.assert_array_equal(mine.data, adata.X.data)

    sc.pp.log1p(adata)
    log_values = adata.X.copy()
    expected = sc.pp.highly_variable_genes(adata, n_top_genes=n_top_genes, flavor="seurat", inplace=False)
    mean, var = normalised_mean_var(log_values, cells_per_block)
    scanpy_mean, scanpy_var = _get_mean_var(np.expm1(log_values))
    np.testing.assert_array_equal(mean, scanpy_mean)
    np.testing.assert_array_equal(var, scanpy_var)
    chosen = seurat_variable_genes(log_values, n_top_genes, cells_per_block)
    np.testing.assert_array_equal(chosen, expected["highly_variable"].to_numpy())
    assert np.array_equal(log_values.data, adata.X.data)  # the matrix is left as it was
