"""No secret printed or stored: one redaction helper for every URI, the runs table's address after each
command, and an Optuna storage that is MLflow's own database refused. The end-to-end tests run the real
commands against a PostgreSQL that requires a password (the session's ``secured_postgres`` fixture), and
read back everything vaebench wrote: output, MLflow params, tags, inputs and artifacts, the Optuna study."""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import PASSWORD
from tests.helpers import FAST, invoke, run_cli
from tests.services import Services
from tests.test_suite import suite_file
from tests.test_tune import toy_obs
from vaebench.errors import VaebenchError
from vaebench.sets.tune import refuse_mlflow_database
from vaebench.tracking.uris import redact, redact_all, runs_table_url, same_database, ui_command


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql+psycopg://me:pw@db:5432/mlflow", "postgresql+psycopg://me:***@db:5432/mlflow"),
        ("mysql://me:p@ss@db/mlflow", "mysql://me:***@db/mlflow"),
        ("mysql+pymysql://:pw@db/mlflow", "mysql+pymysql://:***@db/mlflow"),
        ("https://me:p%40w@mlflow.example.org/x", "https://me:***@mlflow.example.org/x"),
        (
            "postgresql://me@db/x?sslmode=require&password=pw",
            "postgresql://me@db/x?sslmode=require&password=***",
        ),
        ("could not open 'postgresql://me:a/b@db/x' (no)", "could not open 'postgresql://me:***@db/x' (no)"),
        ("postgresql://me@db:5432/mlflow", "postgresql://me@db:5432/mlflow"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("tcp://10.0.0.1:8786", "tcp://10.0.0.1:8786"),
        ("sqlite:////tmp/odd:name@x.db", "sqlite:////tmp/odd:name@x.db"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("/data/mlruns", "/data/mlruns"),
    ],
)
def test_redact_hides_the_password_and_keeps_the_rest(uri: str, shown: str) -> None:
    assert redact(uri) == shown


def test_redact_all_walks_a_definition() -> None:
    given = {"data_path": "https://me:pw@host/x.h5ad", "seeds": [0, 1], "url": ("mysql://a:b@c/d",)}
    assert redact_all(given) == {
        "data_path": "https://me:***@host/x.h5ad",
        "seeds": [0, 1],
        "url": ("mysql://a:***@c/d",),
    }


def test_the_runs_table_is_on_the_server_or_behind_mlflow_ui() -> None:
    server = "https://me:pw@mlflow.example.org:8443/"
    assert runs_table_url(server, "7") == "https://me:***@mlflow.example.org:8443/#/experiments/7/runs"
    assert ui_command(server) is None
    assert runs_table_url("sqlite:///mlflow.db", "1") == "http://127.0.0.1:5000/#/experiments/1/runs"
    assert ui_command("sqlite:///mlflow.db") == "mlflow ui --backend-store-uri sqlite:///mlflow.db"
    store = "postgresql://me:pw@db/mlflow"
    assert ui_command(store) == (
        "mlflow ui --backend-store-uri 'postgresql://me:***@db/mlflow' (your password in place of ***)"
    )
    assert ui_command(store, environment_uri=store) == 'mlflow ui --backend-store-uri "$MLFLOW_TRACKING_URI"'


def test_a_run_prints_the_runs_table_and_the_sidebar_switch(tracking_uri: str, tmp_path: Path) -> None:
    result = invoke("run", "--model", "pca", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"browse it with: mlflow ui --backend-store-uri {tracking_uri}" in result.stdout
    assert "then open the runs table: http://127.0.0.1:5000/#/experiments/1/runs" in result.stdout
    assert "'GenAI / Model training' switch" in result.stdout


def test_same_database_ignores_driver_password_and_default_port(tmp_path: Path, monkeypatch) -> None:
    assert same_database("postgresql+psycopg://a:x@localhost/mlflow", "postgresql://b@localhost:5432/mlflow")
    assert not same_database("postgresql://h/mlflow", "postgresql://h/optuna")
    monkeypatch.chdir(tmp_path)
    assert same_database("sqlite:///mlflow.db", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not same_database("sqlite:///mlflow.db", "http://127.0.0.1:5000")


def test_tune_refuses_the_tracking_store_as_its_storage(tracking_uri: str, tmp_path: Path) -> None:
    """The same URL, and another URL of a database that holds MLflow's tables, are refused in one sentence
    before Optuna creates a table there."""
    with pytest.raises(VaebenchError, match="is a database MLflow already uses; give Optuna a database"):
        refuse_mlflow_database("sqlite:///never-made.db", "sqlite:///never-made.db")
    assert not (tmp_path / "never-made.db").exists()
    copy = tmp_path / "copy-of-mlflow.db"
    shutil.copy(tmp_path / "mlflow.db", copy)
    with pytest.raises(VaebenchError, match=f"such as sqlite:///{tmp_path / 'optuna.db'}"):
        refuse_mlflow_database(f"sqlite:///{copy}", tracking_uri)
    refuse_mlflow_database(f"sqlite:///{tmp_path / 'optuna.db'}", tracking_uri)  # its own: accepted
    result = invoke(*tune_args(tmp_path, tracking_uri), cwd=tmp_path)
    assert result.returncode == 2
    said = " ".join(result.stderr.split())
    assert "is a database MLflow already uses; give Optuna a database of its own" in said
    assert "Traceback" not in said
    import sqlalchemy as sa

    tables = set(sa.inspect(sa.create_engine(tracking_uri)).get_table_names())
    assert "experiments" in tables and "studies" not in tables and "version_info" not in tables


def tune_args(tmp_path: Path, storage: str, trials: int = 1) -> list[str]:
    """A tiny study of the ae on a toy h5ad with two annotations (tuning and evaluation labels)."""
    import anndata

    data = tmp_path / "toy.h5ad"
    if not data.exists():
        X, obs = toy_obs(120, np.random.default_rng(2))
        anndata.AnnData(X=X, obs=obs).write_h5ad(data)
    return [
        "tune", "--model", "ae", "--data", str(data), "--tune-label-key", "cluster", "--eval-label-key",
        "celltype", "--trials", str(trials), "--pruning-interval", "0", "--storage", storage, *FAST,
    ]  # fmt: skip


# ------------------------------------------------------------------------- a PostgreSQL with a password


def leaks(text: str) -> bool:
    return PASSWORD in text or urllib.parse.quote(PASSWORD, safe="") in text


def stored_text(uri: str, experiment: str, scratch: Path) -> str:
    """Everything MLflow holds of an experiment as text: its tags, and each run's params, tags, inputs and
    every artifact (downloaded; binary files read as Latin-1, so a password in a pickle shows too)."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    parts = [repr(exp.tags)]
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    assert runs
    for run in runs:
        parts += [repr(run.data.params), repr(run.data.tags), repr(run.inputs), run.info.artifact_uri]
        target = scratch / run.info.run_id
        target.mkdir(parents=True)
        client.download_artifacts(run.info.run_id, "", str(target))
        parts += [p.read_bytes().decode("latin-1") for p in target.rglob("*") if p.is_file()]
    return "\n".join(parts)


def test_run_suite_and_tune_on_a_password_protected_postgresql_print_and_store_no_password(
    secured_postgres: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per download otherwise
    tracking, storage = secured_postgres.database_url("mlflow"), secured_postgres.database_url("optuna")
    shown = redact(tracking)
    assert PASSWORD not in shown and PASSWORD in tracking
    # A single run, its store given as the variable a user would export.
    single = run_cli("run", "--model", "pca", "--experiment", "secret-run", *FAST, cwd=tmp_path,
                     env={"MLFLOW_TRACKING_URI": tracking})  # fmt: skip
    assert single.returncode == 0, single.stderr
    assert f"at {shown}" in single.stdout
    assert 'mlflow ui --backend-store-uri "$MLFLOW_TRACKING_URI"' in single.stdout
    # A tiny suite (its claims default to the same PostgreSQL), the store given on the command line.
    suite = suite_file(tmp_path, models=("pca", "random"), seeds=(0,))
    ran = run_cli("run", "--suite", str(suite), "--tracking-uri", tracking, "--experiment", "secret-suite",
                  "--report-dir", "out", cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert f"mlflow ui --backend-store-uri '{shown}'" in ran.stdout
    # A tiny study on a second database of the same server, evaluated on one fresh seed.
    tuned = run_cli(
        *tune_args(tmp_path, storage, trials=2), "--evaluate-seeds", "1", "--baseline", "none",
        "--study-name", "secret-study", "--tracking-uri", tracking, "--experiment", "secret-tune",
        cwd=tmp_path,
    )  # fmt: skip
    assert tuned.returncode == 0, tuned.stderr
    assert redact(storage) in " ".join(tuned.stdout.split())
    for result in (single, ran, tuned):
        assert not leaks(result.stdout + result.stderr), result.stdout + result.stderr
    stored = {
        experiment: stored_text(tracking, experiment, tmp_path / "artifacts" / experiment)
        for experiment in ("secret-run", "secret-suite", "secret-tune")
    }
    for experiment, text in stored.items():
        assert not leaks(text), experiment
    assert f"'optuna_storage': '{redact(storage)}'" in stored["secret-tune"]
    study = optuna.load_study(study_name="secret-study", storage=storage)
    system = study._storage.get_study_system_attrs(study._study_id)
    attrs = [study.user_attrs, system] + [
        (t.user_attrs, t.system_attrs, t.params) for t in study.get_trials(deepcopy=False)
    ]
    assert len(study.trials) == 2 and not leaks(repr(attrs))


def test_tune_refuses_mlflows_postgresql_database_without_printing_its_password(
    secured_postgres: Services, tmp_path: Path
) -> None:
    tracking = secured_postgres.database_url("mlflow")
    MlflowClient(tracking).search_experiments()  # MLflow's tables exist
    other_spelling = tracking.replace("127.0.0.1", "localhost")  # not the same URL: its tables tell
    for storage in (tracking, other_spelling):
        result = invoke(*tune_args(tmp_path, storage), "--tracking-uri", tracking, cwd=tmp_path)
        said = " ".join(result.stderr.split())
        assert result.returncode == 2, said
        assert "give Optuna a database of its own, such as" in said and "/optuna" in said
        assert not leaks(result.stdout + result.stderr)
