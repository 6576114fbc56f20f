"""Run configuration: validation in one sentence, flat params, a hash that tracks results only."""

from __future__ import annotations

from pathlib import Path

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
        RunConfig.of(**change)


def test_latent_must_be_below_the_gene_count() -> None:
    with pytest.raises(VaebenchError, match="not below the dataset's 6 genes"):
        RunConfig.of(latent_dim=6).check_against(n_cells=100, n_genes=6)
    RunConfig.of(latent_dim=5).check_against(n_cells=100, n_genes=6)


def test_the_hash_changes_with_results_but_not_with_threads_or_device() -> None:
    base = RunConfig.of(model="beta_vae")
    assert base.config_hash() == RunConfig.of(model="beta_vae").config_hash()
    assert base.config_hash() == RunConfig.of(model="beta_vae", threads=1, device="cpu").config_hash()
    assert base.config_hash() != RunConfig.of(model="beta_vae", seed=1).config_hash()
    assert base.config_hash() != RunConfig.of(model="beta_vae", beta=4.0).config_hash()


def test_beta_is_ignored_by_models_without_one() -> None:
    assert RunConfig.of(model="pca", beta=7.0).config_hash() == RunConfig.of(model="pca").config_hash()


@pytest.mark.parametrize("model", ["pca", "random", "pca50"])
def test_models_that_are_not_trained_neither_log_nor_hash_training_settings(model: str) -> None:
    fitted = RunConfig.of(model=model, epochs=5, lr=0.1, batch_size=8, hidden=(4,))
    assert fitted.config_hash() == RunConfig.of(model=model).config_hash()
    assert not {"epochs", "lr", "batch_size", "hidden"} & set(fitted.params())
    assert RunConfig.of(model="ae", epochs=5).params()["epochs"] == 5


def test_params_round_trip() -> None:
    config = RunConfig.of(model="beta_vsc", hidden=(64, 16), beta=0.5, threads=2)
    # params write out the model's defaults for what was left unset (here the variant, text)
    assert RunConfig.from_params(config.params()) == config
    assert config.variant == "text"
    assert RunConfig.from_params({"latent_dim": "8", "lr": "0.01"}) == RunConfig.of(latent_dim=8, lr=0.01)
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
    study_network = point.with_settings(variant="text")
    assert study_network.config_hash("x") == "49ab05f9268d"  # asked for, the old network is the old run


def test_a_single_run_of_a_suite_point_carries_the_suites_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """``vaebench run --model pca --seed 0`` is the default suite's pca seed 0 (issue 18): the same dataset
    and label key, written out, so one reuses the other's finished run."""
    from typer.testing import CliRunner

    import vaebench.runner
    from vaebench.cli import app
    from vaebench.sets.suite import load_suite

    seen: list[RunConfig] = []

    def stop(config: RunConfig, **kwargs: object) -> None:
        seen.append(config)
        raise VaebenchError("stopped before training")

    monkeypatch.setattr(vaebench.runner, "run_and_log", stop)
    result = CliRunner().invoke(app, ["run", "--model", "pca", "--seed", "0"])
    assert result.exit_code == 2 and "stopped before training" in result.stderr, result.output
    point = next(c for c in load_suite("default").grid() if (c.model, c.seed) == ("pca", 0))
    assert seen[0].config_hash(MAIN_PBMC68K_DATA_HASH) == MAIN_DEFAULT_SUITE_HASHES[("pca", 2.0, 0)]
    assert seen[0].params() == {**point.params(), "tsne_3d": seen[0].tsne_3d}
    assert RunConfig.of(model="pca").config_hash("x") == point.config_hash("x")


def test_a_config_is_its_parts_and_settings_are_named_by_part() -> None:
    from vaebench.config.run_config import split_setting

    config = RunConfig.of(model="beta_vae", epochs=50, latent_dim=8, data_path="rel/cells.h5ad")
    assert (config.training.epochs, config.options.latent_dim, config.epochs) == (50, 8, 50)
    assert config.data.path == str(Path("rel/cells.h5ad").resolve()) and config.dataset is None
    assert (split_setting("training.epochs"), split_setting("data.path"), split_setting("lr")) == (
        "epochs",
        "data_path",
        "lr",
    )
    with pytest.raises(VaebenchError, match=r"training settings are: training\.epochs"):
        split_setting("training.epoch")
    other = config.with_settings(dataset="digits")  # another data source: its own label column
    assert (other.dataset, other.data_path, other.label_key) == ("digits", None, "digit")


def test_tune_resolves_its_files_whichever_way_they_are_spelt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaebench.sets.tune import TuneSettings
    from vaebench.sets.tune.settings import base_config

    monkeypatch.chdir(tmp_path)
    keys = {"model": "ae", "tune_label_key": "a", "eval_label_key": "b", "dataset": None}
    relative = TuneSettings(data_path="cells.csv", labels_path="labels.csv", **keys).resolved()
    absolute = TuneSettings(
        data_path=str(tmp_path / "cells.csv"), labels_path=str(tmp_path / "x" / ".." / "labels.csv"), **keys
    ).resolved()
    assert relative.definition() == absolute.definition()
    assert relative.labels_path == str(tmp_path / "labels.csv")
    assert base_config(relative) == base_config(absolute)


def test_run_takes_settings_by_part_and_field(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import vaebench.runner
    from vaebench.cli import app

    seen: list[RunConfig] = []

    def stop(config: RunConfig, **kwargs: object) -> None:
        seen.append(config)
        raise VaebenchError("stopped before training")

    monkeypatch.setattr(vaebench.runner, "run_and_log", stop)
    args = ["run", "--dataset", "synthetic", "--set", "training.epochs=7", "--set", "model.latent_dim=3"]
    CliRunner().invoke(app, [*args, "--set", "hidden=16,8", "--lr", "0.01"])
    assert (seen[0].training.epochs, seen[0].options.latent_dim, seen[0].hidden, seen[0].lr) == (
        7,
        3,
        (16, 8),
        0.01,
    )
    refused = CliRunner().invoke(app, ["run", "--set", "training.epoch=1"])
    assert refused.exit_code == 2 and "training settings are: training.epochs" in " ".join(
        refused.stderr.split()
    )
