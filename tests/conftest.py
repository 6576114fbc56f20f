"""Shared fixtures: every test writes MLflow and caches under its own temporary folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables created once: creating them (MLflow's migrations) takes 4-5 s,
    which every test with a store of its own would pay again."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> str:
    """A fresh SQLite MLflow store for one test (a copy of an empty one), also exported as
    MLFLOW_TRACKING_URI; the test runs in its own temporary folder. A store whose tables already exist also
    keeps a test that reads it while its command starts from racing the command's creation of them
    (MLflow's SQLite migrations fail when two processes run them at once)."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    # MLflow's in-process URI outranks the variable: an earlier test that configured tracking in this
    # worker process must not send this test's runs to its store.
    import mlflow

    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture(autouse=True)
def _no_inherited_experiment(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's set_experiment exports MLFLOW_EXPERIMENT_ID for subprocesses; a test that configured
    tracking in-process must not hand its experiment to the next test's commands."""
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads and caches never touch the user's home folder during tests."""
    if "VAEBENCH_DATA_DIR" not in os.environ:
        monkeypatch.setenv("VAEBENCH_DATA_DIR", str(tmp_path_factory.mktemp("data-cache")))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A throwaway PostgreSQL, an MLflow server on it and a Dask scheduler with two workers, on loopback,
    for the whole session; all stopped at its end, also when a test fails."""
    from tests.services import cluster_services

    _require("The cluster tests", ("distributed", "psycopg"))
    with cluster_services(tmp_path_factory.mktemp("cluster")) as services:
        yield services


PASSWORD = "Vb-s3cret-7Qx"
"""The password of :func:`secured_postgres`: it must show up nowhere vaebench prints, logs or writes."""


@pytest.fixture(scope="session")
def secured_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A throwaway PostgreSQL on loopback that requires :data:`PASSWORD` (databases ``mlflow`` and
    ``optuna``), for the whole session; stopped at its end, also when a test fails."""
    from tests.services import secured_postgres

    _require("The tests against a PostgreSQL with a password", ("psycopg",))
    with secured_postgres(tmp_path_factory.mktemp("secured"), PASSWORD) as services:
        yield services


def _require(what: str, modules: tuple[str, ...]) -> None:
    """Skip (fail under CI=true) where PostgreSQL or one of ``modules`` is missing."""
    from tests.services import postgres_bin

    missing = []
    if postgres_bin() is None:
        missing.append("PostgreSQL (initdb and pg_ctl)")
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            missing.append(f"the Python package {module}")
    if missing:
        message = f"{what} need {' and '.join(missing)}; .ci/run installs them."
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The cluster tests first: they are the longest file and share one worker's services, so starting
    them at once lets the other worker take every other file meanwhile (with --no-loadscope-reorder,
    xdist hands files out in this order) instead of leaving one worker alone with them at the end."""
    items.sort(key=lambda item: item.path.name != "test_cluster.py")
