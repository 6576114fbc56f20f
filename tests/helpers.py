"""Small helpers shared by the end-to-end tests: running the real CLI and reading back MLflow."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from mlflow.tracking import MlflowClient

# The protocol on small settings; the 2-d map of the synthetic data's 300 cells is drawn on a stratified
# sample of 100 (the subsample rule), a third of its t-SNE's time. The full-size protocol is tested by the
# golden check and test_scale.py.
FAST = ["--epochs", "3", "--n-init", "3", "--no-tsne-3d", "--perplexity", "20", "--tsne-cells", "100"]


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """The installed ``vaebench`` command, in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "vaebench", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def _inside(cwd: Path, env: dict[str, str] | None) -> Iterator[None]:
    """``cwd`` and ``env`` for the length of a command run in this process; MLflow's process-wide tracking
    URI and experiment, which the command sets, are put back afterwards."""
    import mlflow.tracking.fluent as fluent
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    saved_cwd, saved_env = Path.cwd(), dict(os.environ)
    saved_experiment = fluent._active_experiment_id
    os.chdir(cwd)
    os.environ.update(env or {})
    try:
        with _use_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI")):
            yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        fluent._active_experiment_id = saved_experiment


def invoke(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The ``vaebench`` command's own app, in this process (typer's ``CliRunner``), answered as
    :func:`run_cli` answers: exit code, stdout and stderr (with the traceback of anything that escaped).

    The same code path as the installed command, less the ~14 s a new Python process spends importing
    torch, scikit-learn and MLflow and opening the store: for tests of what a command does. Tests of what
    happens between processes (signals, kills, worker pools, ``mlflow run``) use :func:`run_cli`.
    """
    from typer.testing import CliRunner

    from vaebench.cli import app

    with _inside(cwd, env):
        result = CliRunner().invoke(app, list(args))
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, stderr)


def experiment_runs(tracking_uri: str, experiment: str = "vaebench") -> list:
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def artifact_paths(tracking_uri: str, run_id: str, path: str = "") -> set[str]:
    """Every artifact file of a run, recursively."""
    client = MlflowClient(tracking_uri)
    found: set[str] = set()
    for item in client.list_artifacts(run_id, path or None):
        if item.is_dir:
            found |= artifact_paths(tracking_uri, run_id, item.path)
        else:
            found.add(item.path)
    return found
