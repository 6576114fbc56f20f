"""Small helpers shared by the end-to-end tests: running the real CLI and reading back MLflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

FAST = ["--epochs", "3", "--n-init", "3", "--no-tsne-3d", "--perplexity", "20"]


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
