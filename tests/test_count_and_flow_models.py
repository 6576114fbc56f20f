"""The count model (nb_vae) and the flow model (flow_vae): their likelihoods and losses, and the raw counts
the data layer keeps for count models through preprocessing and the cache."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from vaebench.config import RunConfig
from vaebench.data.preprocess import preprocess
from vaebench.data.source import DataSource
from vaebench.data.synthetic import make_synthetic_counts
from vaebench.errors import VaebenchError
from vaebench.models import ModelOptions, get_model
from vaebench.models.flow_vae import planar_step
from vaebench.models.likelihoods import nb_log_likelihood
from vaebench.runner import fit, load_for
from vaebench.training.loop import as_tensor, encode, train

N_CELLS, N_GENES = 160, 40


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny networks run fastest on one thread (on a busy machine, many times faster than on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_counts(seed: int = 0) -> sp.csr_matrix:
    return make_synthetic_counts(N_CELLS, N_GENES, n_types=3, seed=seed, mean_library_size=400).X


def inputs_for(name: str) -> torch.Tensor:
    """What each model trains on: raw counts for nb_vae, log-normalised values for flow_vae."""
    counts = torch.from_numpy(tiny_counts().toarray())
    return counts if name == "nb_vae" else torch.log1p(counts)


def test_the_negative_binomial_matches_torchs_on_zeros_and_counts_alike() -> None:
    x = torch.tensor([[0.0, 1.0, 7.0, 40.0, 0.0], [3.0, 0.0, 0.0, 0.0, 250.0]])
    mu = torch.tensor([[0.5, 2.0, 5.0, 30.0, 1e-3], [1.0, 9.0, 0.2, 60.0, 200.0]])
    theta = torch.tensor([0.3, 1.0, 4.0, 50.0, 1e3])
    reference = torch.distributions.NegativeBinomial(total_count=theta, probs=mu / (mu + theta))
    log_mu, log_theta = mu.log().requires_grad_(), theta.log().requires_grad_()
    ours = nb_log_likelihood(x, log_mu, log_theta)
    torch.testing.assert_close(ours, reference.log_prob(x).sum(dim=1), rtol=1e-5, atol=1e-4)
    # The gradients the decoder and the dispersions learn from are those of the full density too.
    ours.sum().backward()
    log_mu_ref, log_theta_ref = mu.log().requires_grad_(), theta.log().requires_grad_()
    theta_ref, mu_ref = log_theta_ref.exp(), log_mu_ref.exp()
    dense = torch.distributions.NegativeBinomial(total_count=theta_ref, probs=mu_ref / (mu_ref + theta_ref))
    dense.log_prob(x).sum().backward()
    torch.testing.assert_close(log_mu.grad, log_mu_ref.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(log_theta.grad, log_theta_ref.grad, rtol=1e-4, atol=1e-4)


def test_a_planar_step_is_invertible_and_its_log_determinant_is_the_jacobians() -> None:
    torch.manual_seed(0)
    z, u, w, b = torch.randn(1, 3), torch.randn(1, 3) * 3, torch.randn(1, 3), torch.randn(1, 1)
    _, log_det = planar_step(z, u, w, b)
    jacobian = torch.autograd.functional.jacobian(lambda v: planar_step(v, u, w, b)[0], z).reshape(3, 3)
    torch.testing.assert_close(
        log_det, torch.linalg.det(jacobian).abs().log().reshape(1), rtol=1e-4, atol=1e-5
    )
    # u is moved along w so that w . u_hat >= -1 (Rezende & Mohamed, appendix A.1): the map stays monotone
    # along w, so the determinant never reaches zero whatever u the encoder gives.
    for scale in (-100.0, -3.0, 0.0, 3.0):
        _, log_det = planar_step(z, -w * scale, w, b)
        assert torch.isfinite(log_det).all()


@pytest.mark.parametrize("name", ["nb_vae", "flow_vae"])
def test_the_loss_is_finite_and_its_parts_sum_to_it(name: str) -> None:
    torch.manual_seed(0)
    model = get_model(name).build(N_GENES, ModelOptions(latent_dim=4, beta=2.0, flows=3))
    x = inputs_for(name)
    terms = model.loss(x)
    assert terms.total.ndim == 0 and torch.isfinite(terms.total)
    assert set(terms.parts) == {"reconstruction", "beta_kl"}
    torch.testing.assert_close(sum(terms.parts.values()), terms.total)
    assert terms.parts["reconstruction"] > 0
    terms.total.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.encode(x).shape == (N_CELLS, 4)


@pytest.mark.parametrize("name", ["nb_vae", "flow_vae"])
def test_training_lowers_the_loss_and_the_same_seed_repeats_it(name: str) -> None:
    x = inputs_for(name)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = get_model(name).build(N_GENES, ModelOptions(latent_dim=4, beta=1.0, flows=2))
        result = train(model, x, epochs=10, batch_size=40, lr=3e-3, seed=0)
        runs.append((result.losses, encode(model, x)))
    (losses, codes), (again, codes_again) = runs
    assert losses[-1] < 0.8 * losses[0], losses
    assert losses == again
    np.testing.assert_array_equal(codes, codes_again)


def test_flows_enter_the_hash_of_flow_vae_only() -> None:
    flow = RunConfig.of(model="flow_vae")
    assert flow.config_hash() != RunConfig.of(model="flow_vae", flows=8).config_hash()
    assert RunConfig.of(model="beta_vae", flows=8) == RunConfig.of(model="beta_vae")
    with pytest.raises(VaebenchError, match="--flows must be at least 1"):
        RunConfig.of(model="flow_vae", flows=0)


def test_counts_follow_the_prepared_cells_and_genes_through_the_cache(tmp_path: Path) -> None:
    raw = make_synthetic_counts(240, 400, n_types=4, seed=0, mean_library_size=4000)
    adata = anndata.AnnData(
        X=raw.X, obs=raw.obs.set_index(pd.Index(raw.cell_ids)), var=pd.DataFrame(index=raw.gene_names)
    )
    adata.write_h5ad(tmp_path / "c.h5ad")
    raw_of = pd.DataFrame(raw.X.toarray(), index=raw.cell_ids, columns=raw.gene_names)
    for mode, genes in (("standard", 60), ("study", None)):
        source = DataSource(
            path=str(tmp_path / "c.h5ad"), label_key="cell_type", preprocess=mode, n_top_genes=60
        )
        first, cached = source.load(), source.load()
        assert (first.provenance["cache"], cached.provenance["cache"]) == ("miss", "hit")
        for dataset in (first, cached):
            assert sp.issparse(dataset.counts) and dataset.counts.shape == dataset.X.shape
            expected = raw_of.loc[dataset.cell_ids, dataset.gene_names].to_numpy()
            np.testing.assert_array_equal(dataset.counts.toarray(), expected)
        assert genes is None or first.n_genes == genes
    # Without preprocessing the matrix is the counts.
    none = DataSource(path=str(tmp_path / "c.h5ad"), label_key="cell_type", preprocess="none").load()
    assert none.counts is none.X


def test_an_h5ad_brings_its_counts_layer_and_prepared_values_alone_have_none(tmp_path: Path) -> None:
    raw = make_synthetic_counts(100, 50, n_types=3, seed=1)
    obs = raw.obs.set_index(pd.Index(raw.cell_ids))
    log_values = raw.X.log1p()
    with_layer = anndata.AnnData(X=log_values, obs=obs, layers={"counts": raw.X})
    with_layer.write_h5ad(tmp_path / "layer.h5ad")
    anndata.AnnData(X=log_values, obs=obs).write_h5ad(tmp_path / "plain.h5ad")
    layered = DataSource(path=str(tmp_path / "layer.h5ad"), label_key="cell_type").load()
    np.testing.assert_array_equal(layered.counts.toarray(), raw.X.toarray())
    np.testing.assert_allclose(layered.X.toarray(), log_values.toarray())
    # Other counts beside the same values are other data for a count model: another content hash.
    with_layer.layers["counts"] = raw.X * 2
    with_layer.write_h5ad(tmp_path / "layer2.h5ad")
    other = DataSource(path=str(tmp_path / "layer2.h5ad"), label_key="cell_type").load()
    assert other.content_hash() != layered.content_hash()
    plain = RunConfig.of(
        model="nb_vae", dataset=None, data_path=str(tmp_path / "plain.h5ad"), label_key="cell_type"
    )
    with pytest.raises(VaebenchError, match="does not have; run it on a dataset with counts") as error:
        load_for(plain)
    assert "pbmc3k, pbmc68k_counts, synthetic_counts" in str(error.value)


@pytest.mark.parametrize("dataset", ["pbmc68k", "digits"])
def test_a_count_model_on_data_without_counts_names_the_datasets_that_have_them(dataset: str) -> None:
    with pytest.raises(VaebenchError) as error:
        RunConfig.of(model="nb_vae", dataset=dataset)
    assert str(error.value).startswith(f"nb_vae models raw counts, which {dataset} does not have")
    assert "pbmc3k, pbmc68k_counts, synthetic_counts" in str(error.value)


def test_the_runner_feeds_nb_vae_the_counts_and_other_models_the_prepared_matrix() -> None:
    config = RunConfig.of(
        model="nb_vae",
        dataset="synthetic_counts",
        cells=150,
        genes=120,
        n_top_genes=50,
        epochs=2,
        latent_dim=3,
    )
    dataset = load_for(config)
    assert dataset.preprocessing.startswith("standard") and dataset.n_genes == 50
    model, latent, _ = fit(config, dataset)
    np.testing.assert_allclose(latent, encode(model, as_tensor(dataset.counts, torch.device("cpu"))))
    assert not np.allclose(latent, encode(model, as_tensor(dataset.X, torch.device("cpu"))))


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("largest_count", [40, 70_000, 5_000_000_000])
def test_standard_keeps_the_exact_counts_of_the_kept_genes(dense: bool, largest_count: int) -> None:
    raw = make_synthetic_counts(120, 90, n_types=3, seed=2)
    counts = raw.X.toarray()
    counts[0, 0] = largest_count  # beyond uint16, beyond uint32: the saved values must stay exact
    matrix = counts if dense else sp.csr_matrix(counts)
    dataset = preprocess(replace(raw, X=matrix, raw_counts=None), "standard", n_top_genes=30)
    kept = pd.DataFrame(counts, columns=raw.gene_names)[list(dataset.gene_names)].to_numpy()
    assert dataset.n_genes == 30 and sp.issparse(dataset.counts) != dense
    np.testing.assert_array_equal(np.asarray(sp.csr_matrix(dataset.counts).toarray()), kept)


def test_pbmc68k_counts_are_the_umi_counts_behind_scanpys_pbmc68k() -> None:
    """Real counts offline: normalised and logged as scanpy did, they give pbmc68k_reduced's raw values."""
    import scanpy as sc

    dataset = DataSource(dataset="pbmc68k_counts", preprocess="none").load()
    counts = dataset.counts.toarray()
    assert counts.shape == (700, 765) and np.array_equal(counts, np.rint(counts)) and counts.min() == 0
    shipped = sc.datasets.pbmc68k_reduced()
    totals = shipped.obs["n_counts"].to_numpy()[:, None]
    np.testing.assert_allclose(np.log1p(counts / totals * 1e4), shipped.raw.X.toarray(), atol=0.02)
    assert list(dataset.obs["bulk_labels"]) == list(shipped.obs["bulk_labels"].astype(str))
    # Without --preprocess, counts get the standard steps and count models read the counts beside them.
    prepared = DataSource(dataset="pbmc68k_counts").load()
    assert prepared.preprocessing.startswith("standard") and prepared.counts is not None
