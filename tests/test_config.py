"""Run configuration: validation in one sentence, flat params, a hash that tracks results only."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vaebench.config import RunConfig, parse_hidden
from vaebench.errors import VaebenchError


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "--epochs must be at least 1"),
        ({"epochs": -5}, "--epochs must be at least 1"),
        ({"lr": 0.0}, "--lr must be positive"),
        ({"lr": -1e-3}, "--lr must be positive"),
        ({"beta": -1.0, "model": "beta_vae"}, "--beta must be zero or positive"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"latent_dim": 0}, "--latent-dim must be at least 1"),
        ({"model": "nope"}, "known models are"),
        ({"variant": "paper"}, "known variants are: text, code"),
        ({"threads": 0}, "--threads must be at least 1"),
    ],
)
def test_impossible_settings_are_refused_in_one_sentence(change: dict, message: str) -> None:
    with pytest.raises(VaebenchError, match=message):
        RunConfig(**change).validate()


def test_latent_must_be_below_the_gene_count() -> None:
    with pytest.raises(VaebenchError, match="not below the dataset's 6 genes"):
        RunConfig(latent_dim=6).check_against(n_cells=100, n_genes=6)
    RunConfig(latent_dim=5).check_against(n_cells=100, n_genes=6)


def test_the_hash_changes_with_results_but_not_with_threads_or_device() -> None:
    base = RunConfig(model="beta_vae")
    assert base.config_hash() == RunConfig(model="beta_vae").config_hash()
    assert base.config_hash() == RunConfig(model="beta_vae", threads=1, device="cpu").config_hash()
    assert base.config_hash() != RunConfig(model="beta_vae", seed=1).config_hash()
    assert base.config_hash() != RunConfig(model="beta_vae", beta=4.0).config_hash()


def test_beta_is_ignored_by_models_without_one() -> None:
    assert RunConfig(model="pca", beta=7.0).validate().config_hash() == RunConfig(model="pca").config_hash()


@pytest.mark.parametrize("model", ["pca", "random", "pca50"])
def test_models_that_are_not_trained_neither_log_nor_hash_training_settings(model: str) -> None:
    fitted = RunConfig(model=model, epochs=5, lr=0.1, batch_size=8, hidden=(4,)).validate()
    assert fitted.config_hash() == RunConfig(model=model).validate().config_hash()
    assert not {"epochs", "lr", "batch_size", "hidden"} & set(fitted.params())
    assert RunConfig(model="ae", epochs=5).params()["epochs"] == 5


def test_params_round_trip() -> None:
    config = RunConfig(model="beta_vsc", hidden=(64, 16), beta=0.5, threads=2)
    # params write out the model's defaults for what was left unset (here the variant, text)
    assert RunConfig.from_params(config.params()) == config.with_model_defaults()
    assert config.with_model_defaults().variant == "text"
    assert RunConfig.from_params({"latent_dim": "8", "lr": "0.01"}) == RunConfig(latent_dim=8, lr=0.01)
    with pytest.raises(VaebenchError, match="Unknown setting"):
        RunConfig.from_params({"latent": "8"})


def test_hidden_widths_parse() -> None:
    assert parse_hidden("128,32") == (128, 32)
    assert parse_hidden(None) is None
    with pytest.raises(VaebenchError, match="comma-separated integers"):
        parse_hidden("128;32")


# The hashes main gave as of commit e4f1c7e (before unlabelled data and collapse metrics). They name
# finished runs in users' MLflow stores, which a suite reuses by hash: they must never change.
MAIN_PBMC68K_DATA_HASH = "b9fe207b40d7bf56"
MAIN_DEFAULT_SUITE_HASHES = {
    ("pca", 2.0, 0): "c7966f72d864",
    ("ae", 2.0, 0): "f4b4bcfe07ad",
    ("beta_vae", 2.0, 0): "694552e22679",
    ("beta_vae", 0.5, 1): "cba277bebed2",
    ("beta_vsc", 4.0, 0): "53ad66a3d84b",
    ("flow_vae", 1.0, 0): "2a9b8d471bcd",
    ("random", 2.0, 0): "07e2e24a0bf0",
    ("pca50", 2.0, 1): "078ed39165f2",
}


def test_todays_suites_keep_their_hashes() -> None:
    from vaebench.sets.suite import dataset_of, load_suite

    grid = load_suite("default").grid()
    data_hash = dataset_of(grid[0]).content_hash()
    assert data_hash == MAIN_PBMC68K_DATA_HASH
    hashes = {(c.model, c.beta, c.seed): c.config_hash(data_hash) for c in grid}
    assert {point: hashes[point] for point in MAIN_DEFAULT_SUITE_HASHES} == MAIN_DEFAULT_SUITE_HASHES
    assert load_suite("smoke").grid()[0].config_hash("abc") == "0f1aaee4c128"
    assert load_suite("counts").grid()[0].config_hash("abc") == "eee379a043fa"


def test_a_model_whose_defaults_changed_is_not_confused_with_its_old_runs() -> None:
    """nb_vae's defaults became scVI's layers and beta 1 (issue 17): its counts-suite points say so in their
    params and hash apart from main's e4f1c7e runs, which trained the study's network, so none is reused."""
    from vaebench.sets.suite import load_suite

    point = next(c for c in load_suite("counts").grid() if c.model == "nb_vae" and c.seed == 0)
    assert (point.params()["variant"], point.params()["beta"]) == ("scvi", 1.0)
    assert point.config_hash("x") != "49ab05f9268d"  # main's hash of this point, e4f1c7e
    study_network = replace(point, variant="text").validate()
    assert study_network.config_hash("x") == "49ab05f9268d"  # asked for, the old network is the old run
