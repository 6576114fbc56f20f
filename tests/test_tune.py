"""Tuning studies: real Optuna SQLite storage and a real MLflow store, both under tmp_path.

A toy dataset (200 cells, 3 well-separated groups, two annotation columns) keeps each trial to about a
second; every study trains for 2-3 epochs with the cheapest protocol settings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from vaebench.data import Dataset
from vaebench.errors import VaebenchError
from vaebench.sets import tune as tuning

FAST = {
    "epochs": "2",
    "n_init": "2",
    "tsne_3d": "false",
    "perplexity": "10",
    "batch_size": "64",
    "hidden": "256,64",
    "threads": "1",
}
EXPERIMENT = "tune-tests"


def toy_obs(n_cells: int, rng: np.random.Generator) -> tuple[np.ndarray, pd.DataFrame]:
    groups = np.repeat(np.arange(3), n_cells // 3 + 1)[:n_cells]
    centres = rng.normal(0, 3, size=(3, 30))
    X = np.log1p(np.abs(centres[groups] + rng.normal(0, 1, size=(n_cells, 30)))).astype(np.float32)
    obs = pd.DataFrame(
        {
            "cluster": [f"c{g}" for g in groups],
            # the evaluation annotation: a coarser, partly different grouping
            "celltype": np.where(groups == 2, "B", "T"),
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    return X, obs


@pytest.fixture(scope="module")
def toy() -> Dataset:
    X, obs = toy_obs(200, np.random.default_rng(0))
    return Dataset(
        name="toy",
        X=X,
        obs=obs,
        label_key="cluster",
        cell_ids=obs.index.to_numpy(),
        gene_names=np.array([f"g{i}" for i in range(X.shape[1])]),
    )


def settings(tmp_path: Path, **changes) -> tuning.TuneSettings:
    base = {
        "model": "ae",
        "trials": 3,
        "dataset": "toy",
        "tune_label_key": "cluster",
        "eval_label_key": "celltype",
        "fixed": dict(FAST),
        "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
        "study_name": "toy-study",
        "evaluate_seeds": 0,
        "pruning_interval": 0,
        "sampler_seed": 0,
    }
    return tuning.TuneSettings(**{**base, **changes})


def runs(tracking_uri: str, role: str | None = None) -> list:
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return []
    found = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in found if role is None or r.data.tags.get("vaebench.role") == role]


def trial_states(tmp_path: Path, name: str = "toy-study") -> list[TrialState]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    return [t.state for t in study.get_trials(deepcopy=False)]


# ----------------------------------------------------------------------------------------------- checks


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"eval_label_key": "cluster"}, "must not be scored on the labels it was tuned on"),
        ({"objective": "tsne_kmeans.accuracy"}, "known objectives are: latent.asw_label"),
        ({"trials": 0}, "--trials must be at least 1"),
        ({"jobs": 0}, "--jobs must be at least 1"),
        ({"cluster": "tcp://127.0.0.1:8786"}, "--cluster needs an Optuna storage every worker can reach"),
        ({"model": "transformer"}, "Unknown model 'transformer'"),
        ({"fixed": {"widht": "3"}}, "Unknown setting 'widht' in --set; known settings are:"),
        ({"fixed": {"model": "pca"}}, "use --model instead"),
        ({"fixed": {"epochs": "many"}}, "epochs must be a int"),
        ({"tune_label_key": None, "eval_label_key": None}, "give both --tune-label-key"),
        ({"fixed": {"seed": "1000"}, "evaluate_seeds": 3}, "among the evaluation seeds"),
        (
            {"fixed": {k: "1" for k in ("lr", "latent_dim", "hidden", "batch_size", "epochs")}},
            "nothing is left to tune",
        ),
    ],
)
def test_bad_settings_are_one_sentence(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(VaebenchError) as caught:
        settings(tmp_path, **changes).resolved(registered_dataset=False)
    assert message in str(caught.value)
    assert str(caught.value).endswith(".") and "\n" not in str(caught.value)


def test_pbmc68k_defaults_tune_on_louvain_and_report_on_bulk_labels(tmp_path: Path) -> None:
    resolved = tuning.TuneSettings(model="beta_vsc", fixed={"tsne_3d": "false"}).resolved()
    assert (resolved.tune_label_key, resolved.eval_label_key) == ("louvain", "bulk_labels")
    assert resolved.study_name == "beta_vsc-pbmc68k-tsne_kmeans.ari"
    assert TUNING_SEED_NOT_IN(resolved)
    multi = tuning.TuneSettings(model="ae", multi_objective=True).resolved()
    assert multi.study_name == "ae-pbmc68k-tsne_kmeans.ari+train.cpu_seconds"
    assert not multi.pruning
    with pytest.raises(VaebenchError, match="Unknown dataset 'pbmc86k'"):
        tuning.TuneSettings(model="ae", dataset="pbmc86k").resolved()
    with pytest.raises(VaebenchError, match="give both --tune-label-key"):
        tuning.TuneSettings(model="ae", dataset="synthetic").resolved()


def TUNING_SEED_NOT_IN(resolved: tuning.TuneSettings) -> bool:
    return (
        resolved.tuning_seed not in resolved.eval_seeds and resolved.eval_seeds[0] == tuning.EVAL_SEED_START
    )


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["latent_dim"], "--set takes name=value"),
        (["=4"], "--set takes name=value"),
        (["latent_dim="], "--set takes name=value"),
        (["colour=blue"], "Unknown setting 'colour'"),
    ],
)
def test_malformed_set_is_refused(items: list[str], message: str) -> None:
    with pytest.raises(VaebenchError, match=message):
        tuning.parse_set(items)


def test_set_removes_parameters_from_the_search_space(tmp_path: Path) -> None:
    resolved = settings(tmp_path, fixed={"latent_dim": "4", "hidden": "64,16"}).resolved(False)
    space = tuning.search_space(resolved)
    assert "latent_dim" not in space and "hidden" not in space and "lr" in space
    base = tuning.base_config(resolved)
    assert base.latent_dim == 4 and base.hidden == (64, 16) and base.label_key == "cluster" and base.seed == 0
    config = tuning.config_for(base, {"hidden": "128,32", "lr": 0.01})
    assert config.hidden == (128, 32) and config.lr == 0.01


@pytest.mark.parametrize("url", ["nosuchdialect://x/y", "sqlite:////no/such/folder/optuna.db", "not a url"])
def test_bad_storage_url_is_rephrased(tmp_path: Path, url: str) -> None:
    with pytest.raises(VaebenchError, match="could not be opened"):
        tuning.open_storage(settings(tmp_path, storage=url).resolved(False))


def test_distributions_follow_the_registry_tuples() -> None:
    assert tuning.distribution(("log_float", 1e-4, 1e-2)).log
    assert tuning.distribution(("int", 2, 32)).high == 32
    assert tuning.distribution(("categorical", ("128,32", "256,64"))).choices == ("128,32", "256,64")


def test_owner_of_a_dead_process_is_recognised() -> None:
    assert tuning.owner_alive(tuning.process_owner()) is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = tuning.process_owner().rsplit(":", 2)[0]
    assert tuning.owner_alive(f"{host}:{child.pid}:1") is False
    assert tuning.owner_alive("another-host:1:1") is None


def test_intermediate_score_matches_the_objective_family() -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat(["a", "b"], 50)
    latent = np.concatenate([rng.normal(0, 0.1, (50, 3)), rng.normal(5, 0.1, (50, 3))])
    assert tuning.intermediate_score(latent, labels, "tsne_kmeans.ari", seed=0) == pytest.approx(1.0)
    assert tuning.intermediate_score(latent, labels, "latent.silhouette", seed=0) > 0.9
    with pytest.raises(VaebenchError, match="diverged"):
        tuning.intermediate_score(np.full((100, 3), np.nan), labels, "tsne_kmeans.ari", seed=0)


def test_a_collapsed_latent_is_refused_before_t_sne() -> None:
    # t-SNE's PCA initialisation divides by the total variance: a constant code crashes it.
    assert tuning.collapsed(np.ones((50, 4), dtype=np.float32))
    assert not tuning.collapsed(np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32))


# ------------------------------------------------------------------------------------------ studies


def test_study_runs_logs_trials_and_continues_to_its_total(
    tracking_uri: str, tmp_path: Path, toy: Dataset
) -> None:
    events: list[str] = []
    first = tuning.tune(
        settings(tmp_path, fixed={**FAST, "latent_dim": "4"}),
        experiment=EXPERIMENT,
        dataset=toy,
        on_event=events.append,
    )
    assert first.trials_run == 3 and first.states["COMPLETE"] == 3
    assert len(first.best) == 1 and 0 <= first.best[0].values[0] <= 1
    assert any(line.startswith("trial 2 COMPLETE") for line in events)
    parents = runs(tracking_uri, "tune")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.tags["study"] == "toy-study" and parent.data.tags["model"] == "ae"
    assert parent.info.status == "FINISHED"
    assert "best.lr" in parent.data.params and f"best.{tuning.DEFAULT_OBJECTIVE}" in parent.data.metrics
    artifacts = {a.path for a in MlflowClient().list_artifacts(parent.info.run_id, "figures")}
    assert "figures/optimization_history.png" in artifacts and "figures/param_importances.png" in artifacts
    assert any(
        a.path == "best/params.json" for a in MlflowClient().list_artifacts(parent.info.run_id, "best")
    )
    children = runs(tracking_uri, "tune-trial")
    assert sorted(int(r.data.tags["trial_number"]) for r in children) == [0, 1, 2]
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["trial_state"] == "COMPLETE" and child.info.status == "FINISHED"
        assert child.data.params["latent_dim"] == "4"  # fixed by --set in every trial
        assert child.data.params["dataset.label_key"] == "cluster" and child.data.params["seed"] == "0"

    fixed = {**FAST, "latent_dim": "4", "threads": "2"}  # execution settings may change between runs
    second = tuning.tune(settings(tmp_path, trials=5, fixed=fixed), experiment=EXPERIMENT, dataset=toy)
    assert second.trials_run == 2
    assert trial_states(tmp_path).count(TrialState.COMPLETE) == 5
    assert len(runs(tracking_uri, "tune-trial")) == 5
    again = tuning.tune(settings(tmp_path, trials=5, fixed=fixed), experiment=EXPERIMENT, dataset=toy)
    assert again.trials_run == 0 and len(runs(tracking_uri, "tune-trial")) == 5


def test_continuing_with_other_settings_is_refused(tracking_uri: str, tmp_path: Path, toy: Dataset) -> None:
    tuning.tune(settings(tmp_path, trials=1), experiment=EXPERIMENT, dataset=toy)
    with pytest.raises(VaebenchError, match="was started with other settings"):
        tuning.tune(
            settings(tmp_path, trials=2, fixed={**FAST, "latent_dim": "3"}),
            experiment=EXPERIMENT,
            dataset=toy,
        )
    fewer = Dataset("toy", toy.X[:150], toy.obs.iloc[:150], "cluster", toy.cell_ids[:150], toy.gene_names)
    with pytest.raises(VaebenchError, match="was started on other data"):
        tuning.tune(settings(tmp_path, trials=2), experiment=EXPERIMENT, dataset=fewer)
    # Neither refusal ran a trial.
    assert trial_states(tmp_path) == [TrialState.COMPLETE]


def test_pruned_trials_end_killed_and_tagged_pruned(tracking_uri: str, tmp_path: Path, toy: Dataset) -> None:
    # An ARI never exceeds 1, so this pruner stops every trial at its first report (epoch 1).
    pruner = optuna.pruners.ThresholdPruner(lower=1.5)
    result = tuning.tune(
        settings(tmp_path, trials=2, pruner=pruner, pruning_interval=1, fixed={**FAST, "epochs": "3"}),
        experiment=EXPERIMENT,
        dataset=toy,
    )
    assert result.states["PRUNED"] == 2 and result.best == []
    assert any("No trial completed" in note for note in result.notes)
    for child in runs(tracking_uri, "tune-trial"):
        assert child.info.status == "KILLED"
        assert child.data.tags["trial_state"] == "PRUNED" and child.data.tags["pruned_at_epoch"] == "1"
        assert "failure_reason" not in child.data.tags
        assert "tune.intermediate" in child.data.metrics


def test_a_configuration_that_cannot_be_scored_fails_and_counts(
    tracking_uri: str, tmp_path: Path, toy: Dataset
) -> None:
    # On these data this narrow autoencoder's ReLU latent dies: every code is 0, which t-SNE cannot embed.
    fixed = {**FAST, "hidden": "64,16", "latent_dim": "4"}
    result = tuning.tune(settings(tmp_path, trials=1, fixed=fixed), experiment=EXPERIMENT, dataset=toy)
    assert result.states["FAIL"] == 1 and result.trials_run == 1 and result.best == []
    (child,) = runs(tracking_uri, "tune-trial")
    assert child.info.status == "FAILED" and child.data.tags["trial_state"] == "FAIL"
    assert "collapsed" in child.data.tags["failure_reason"]
    again = tuning.tune(settings(tmp_path, trials=1, fixed=fixed), experiment=EXPERIMENT, dataset=toy)
    assert again.trials_run == 0 and len(runs(tracking_uri, "tune-trial")) == 1


def test_evaluation_uses_fresh_seeds_and_the_evaluation_labels(
    tracking_uri: str, tmp_path: Path, toy: Dataset
) -> None:
    result = tuning.tune(settings(tmp_path, trials=1, evaluate_seeds=2), experiment=EXPERIMENT, dataset=toy)
    (point,) = result.evaluations
    assert point.entry == "ae (tuned)" and point.seeds == [1000, 1001] and point.label_key == "celltype"
    assert result.baseline is not None and result.baseline.seeds == [1000, 1001]
    assert {c.metric for c in result.comparisons} >= {"tsne_kmeans.ari", "tsne_kmeans.nmi"}
    evaluations = runs(tracking_uri, "tune-eval")
    assert len(evaluations) == 4
    for run in evaluations:
        tags = run.data.tags
        assert tags["suite"] == "tune:toy-study" and tags["seed"] in ("1000", "1001")
        assert run.data.params["dataset.label_key"] == "celltype" and "config_hash" in tags
        assert (tags["entry"], tags["tuned"]) in {("ae (tuned)", "true"), ("pca", "false")}
    parent = runs(tracking_uri, "tune")[0]
    assert (
        "eval.tsne_kmeans.ari.mean" in parent.data.metrics
        and "eval.tsne_kmeans.ari.sd" in parent.data.metrics
    )
    assert "baseline.tsne_kmeans.ari.mean" in parent.data.metrics
    # Evaluating again reuses the finished evaluation runs instead of training them twice.
    tuning.tune(settings(tmp_path, trials=1, evaluate_seeds=2), experiment=EXPERIMENT, dataset=toy)
    assert len(runs(tracking_uri, "tune-eval")) == 4


def test_multi_objective_gives_a_pareto_front(tracking_uri: str, tmp_path: Path, toy: Dataset) -> None:
    result = tuning.tune(
        settings(tmp_path, model="beta_vae", multi_objective=True, study_name=None),
        experiment=EXPERIMENT,
        dataset=toy,
    )
    assert result.objectives == ("tsne_kmeans.ari", "train.cpu_seconds")
    assert result.study_name == "beta_vae-toy-tsne_kmeans.ari+train.cpu_seconds"
    assert len(result.best) >= 1 and all(len(t.values or []) == 2 for t in result.best)
    assert "figures/pareto_front.png" in result.figures
    assert "figures/optimization_history.png" in result.figures  # plotted against the first objective
    parent = runs(tracking_uri, "tune")[0]
    assert parent.data.metrics["tune.pareto_size"] == len(result.best)
    assert parent.data.params["pruner"] == "NopPruner"


def test_optunas_plots_keep_their_style_to_their_own_figures() -> None:
    """Optuna's plots call plt.style.use("ggplot"): the study's later figures, a report's or a run's maps
    drawn in the same process must keep matplotlib's style."""
    import matplotlib
    import matplotlib.pyplot as plt

    from vaebench.sets.tune.figures import history_figure, importance_figure, pareto_figure

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    single = optuna.create_study(direction="maximize")
    single.optimize(lambda trial: trial.suggest_float("beta", 0.1, 10) ** 0.5, n_trials=4)
    double = optuna.create_study(directions=["maximize", "minimize"])
    double.optimize(
        lambda trial: (trial.suggest_float("beta", 0.1, 10), trial.params["beta"] ** 2), n_trials=4
    )
    style_before = dict(matplotlib.rcParams)
    figures = [
        history_figure(single, ["ari"]),
        importance_figure(single, ["ari"]),
        pareto_figure(double, ["ari", "seconds"]),
    ]
    assert figures[0].axes[0].get_facecolor() != (1.0, 1.0, 1.0, 1.0)  # Optuna's own figures keep ggplot
    assert dict(matplotlib.rcParams) == style_before
    later = plt.figure()
    assert later.add_subplot().get_facecolor() == (1.0, 1.0, 1.0, 1.0)
    for figure in [*figures, later]:
        plt.close(figure)


# --------------------------------------------------------------------------------- killed and resumed


def write_h5ad(path: Path) -> None:
    import anndata

    X, obs = toy_obs(200, np.random.default_rng(0))
    anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(X.shape[1])])).write_h5ad(
        path
    )


def test_a_study_killed_mid_trial_continues(tracking_uri: str, tmp_path: Path) -> None:
    data = tmp_path / "toy.h5ad"
    write_h5ad(data)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    sets = [arg for k, v in FAST.items() for arg in ("--set", f"{k}={v}")]
    command = [
        sys.executable, "-m", "vaebench.cli.tune", "--model", "ae", "--trials", "20", "--data", str(data),
        "--tune-label-key", "cluster", "--eval-label-key", "celltype", "--storage", storage,
        "--study-name", "toy-study", "--evaluate-seeds", "0", "--pruning-interval", "0",
        "--experiment", EXPERIMENT, *sets,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.time() + 240  # a wait, not a speed check: a loaded machine takes longer
    try:
        while time.time() < deadline:
            time.sleep(0.05)
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                states = trial_states(tmp_path)
            except KeyError:  # the study does not exist yet
                continue
            if TrialState.COMPLETE in states and states[-1] == TrialState.RUNNING:
                # kill it once the running trial's MLflow run exists too
                running = [r for r in runs(tracking_uri, "tune-trial") if r.info.status == "RUNNING"]
                if any(r.data.tags["trial_number"] == str(len(states) - 1) for r in running):
                    break
        else:
            pytest.fail("the study never reached its second trial")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed = len(trial_states(tmp_path)) - 1
    assert runs(tracking_uri, "tune")[0].info.status == "RUNNING"

    result = tuning.tune(settings(tmp_path, data_path=str(data), trials=killed + 1), experiment=EXPERIMENT)
    study = optuna.load_study(study_name="toy-study", storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert trials[killed].state == TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == trials[killed].params
    assert result.trials_run == 1 and tuning.counted_trials(study) == killed + 1
    statuses = {r.info.run_id: r.info.status for r in runs(tracking_uri)}
    assert sorted(statuses.values()).count("RUNNING") == 0
    old_parent = next(r for r in runs(tracking_uri, "tune") if r.info.run_id != result.parent_run_id)
    assert old_parent.info.status == "KILLED"
    killed_child = [r for r in runs(tracking_uri, "tune-trial") if r.info.status == "KILLED"]
    assert len(killed_child) == 1 and killed_child[0].data.tags["trial_state"] == "FAIL"


@pytest.mark.slow
def test_parallel_jobs_share_the_storage(tracking_uri: str, tmp_path: Path, toy: Dataset) -> None:
    result = tuning.tune(settings(tmp_path, trials=2, jobs=2), experiment=EXPERIMENT, dataset=toy)
    assert result.states["COMPLETE"] == 2
    children = runs(tracking_uri, "tune-trial")
    assert len(children) == 2 and len({r.data.tags["tune_owner"] for r in children}) == 2
    # a seeded sampler gives each process its own stream: the two do not try the same point
    assert children[0].data.params["lr"] != children[1].data.params["lr"]


def test_cli_refuses_the_same_labels_in_one_sentence(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from vaebench.cli.tune import tune  # a command of its own, importable without vaebench.cli

    app = typer.Typer()
    app.command()(tune)
    result = CliRunner().invoke(
        app, ["--model", "ae", "--tune-label-key", "louvain", "--eval-label-key", "louvain"]
    )
    assert result.exit_code == 2
    assert "must not be scored on the labels it was tuned on" in result.output

    from vaebench.cli import app

    mounted = CliRunner().invoke(app, ["tune", "--model", "ae", "--set", "colour=blue"])
    assert mounted.exit_code == 2 and "Unknown setting 'colour' in --set" in mounted.output


def test_cli_study_end_to_end_and_the_tuned_model_in_the_report(tracking_uri: str, tmp_path: Path) -> None:
    """What CI runs of tuning: the installed command, a tiny study, its fresh-seed evaluation, and the
    tuned model standing beside a suite's defaults in `vaebench report`, paired with pca on its seeds."""
    import anndata

    from tests.helpers import invoke

    X, obs = toy_obs(150, np.random.default_rng(1))
    data = tmp_path / "toy.h5ad"
    anndata.AnnData(X=X, obs=obs).write_h5ad(data)
    fixed = [arg for name, value in FAST.items() for arg in ("--set", f"{name}={value}")]
    tuned = invoke(
        "tune", "--model", "ae", "--data", str(data), "--tune-label-key", "cluster",
        "--eval-label-key", "celltype", "--trials", "2", "--evaluate-seeds", "2", "--sampler-seed", "0",
        "--pruning-interval", "0", "--storage", f"sqlite:///{tmp_path / 'optuna.db'}", *fixed,
        cwd=tmp_path,
    )  # fmt: skip
    assert tuned.returncode == 0, tuned.stderr
    said = " ".join(tuned.stdout.split())  # rich wraps lines at the width of a terminal
    assert "ae (tuned) - pca: tsne_kmeans.ari" in said and "over 2 paired seeds" in said
    suite = tmp_path / "defaults.toml"
    suite.write_text(
        f'name = "defaults"\ndata_path = "{data}"\nlabel_key = "celltype"\nmodels = ["ae", "pca"]\n'
        "seeds = [0, 1]\n\n[options]\nepochs = 2\nn_init = 2\nperplexity = 10.0\ntsne_3d = false\n"
    )
    ran = invoke("run", "--suite", str(suite), "--report-dir", "out", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("entry")
    assert summary.loc["ae (tuned)", "n_seeds"] == 2 and summary.loc["ae", "n_seeds"] == 2
    assert summary.loc["pca", "n_seeds"] == 4  # the suite's seeds 0-1 and the study's fresh seeds
    paired = pd.read_csv(tmp_path / "out" / "paired_vs_pca.csv").set_index(["entry", "metric"])
    assert paired.loc[("ae (tuned)", "tsne_kmeans.ari"), "n_pairs"] == 2
    assert paired.loc[("ae", "tsne_kmeans.ari"), "n_pairs"] == 2
