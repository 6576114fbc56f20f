"""Everything vaebench writes to MLflow; the only module that imports mlflow.

Tracking goes where the user points it (``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else MLflow's own
default, a SQLite ``mlflow.db`` in the working folder). A run that raises is ended FAILED with the reason
as the tag ``failure_reason``; one interrupted by Ctrl-C is ended KILLED; what it logged before stays.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

FAILED, FINISHED, KILLED = "FAILED", "FINISHED", "KILLED"
_MAX_PARAM_LENGTH = 6000


def configure(tracking_uri: str | None, experiment: str) -> str:
    """Point MLflow at ``tracking_uri`` (None: MLflow's default) and ``experiment``; return the URI in use."""
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    return mlflow.get_tracking_uri()


def git_commit(path: Path | None = None) -> str | None:
    """The project's git commit, where it runs from a checkout."""
    where = path or Path(__file__).resolve().parent
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=False
        )
        if out.returncode == 0:
            return out.stdout.strip()
    return None


@dataclass
class RunHandle:
    """One open MLflow run: log to it through these methods, never through mlflow directly."""

    run_id: str
    experiment_id: str

    @property
    def client(self) -> MlflowClient:
        return MlflowClient()

    def log_params(self, params: dict[str, Any]) -> None:
        clean = {k: str(v)[:_MAX_PARAM_LENGTH] for k, v in params.items()}
        mlflow.log_params(clean, run_id=self.run_id)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step, run_id=self.run_id)

    def log_series(self, name: str, values: Sequence[float], first_step: int = 1) -> None:
        """A stepped metric (one value per epoch, say) written in one batch."""
        metrics = [Metric(name, float(v), 0, first_step + i) for i, v in enumerate(values)]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000], synchronous=True)

    def set_tags(self, tags: dict[str, Any]) -> None:
        batch = [RunTag(key, str(value)) for key, value in tags.items()]
        self.client.log_batch(self.run_id, tags=batch, synchronous=True)

    def log_figure(self, figure: Figure, artifact_file: str) -> None:
        self.client.log_figure(self.run_id, figure, artifact_file)

    def log_table(self, table: pd.DataFrame, artifact_file: str) -> None:
        """A DataFrame as a CSV (or Markdown, by the file's suffix) artifact."""
        text = table.to_markdown() if artifact_file.endswith(".md") else table.to_csv(index=False)
        self.client.log_text(self.run_id, text, artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, data: dict[str, Any], artifact_file: str) -> None:
        self.client.log_text(self.run_id, json.dumps(data, indent=2, default=str), artifact_file)

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_torch_model(self, model: Any, n_inputs: int, name: str = "model") -> None:
        """The trained network with ``mlflow.pytorch``; it serves cells x genes -> latent codes."""
        import mlflow.pytorch
        import numpy as np
        import torch
        from mlflow.models import ModelSignature
        from mlflow.types import Schema, TensorSpec

        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, n_inputs))]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, int(model.latent_dim)))]),
        )
        with self._activated():
            mlflow.pytorch.log_model(
                model.cpu(), name=name, signature=signature, pip_requirements=[f"torch=={torch.__version__}"]
            )

    def log_sklearn_model(self, estimator: Any, name: str = "model") -> None:
        import mlflow.sklearn
        import sklearn

        with self._activated():
            mlflow.sklearn.log_model(
                estimator, name=name, pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
            )

    def artifact_uri(self) -> str:
        return self.client.get_run(self.run_id).info.artifact_uri

    def ui_path(self) -> str:
        return f"#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def _is_active(self) -> bool:
        active = mlflow.active_run()
        return active is not None and active.info.run_id == self.run_id

    @contextlib.contextmanager
    def _activated(self) -> Iterator[None]:
        if self._is_active():
            yield
            return
        with mlflow.start_run(run_id=self.run_id, nested=mlflow.active_run() is not None):
            yield


@contextlib.contextmanager
def start_run(
    run_name: str, tags: dict[str, Any] | None = None, parent_run_id: str | None = None
) -> Iterator[RunHandle]:
    """Open a run (nested under ``parent_run_id`` if given) and close it with the right status."""
    run = mlflow.start_run(
        run_name=run_name,
        tags={k: str(v) for k, v in (tags or {}).items()},
        parent_run_id=parent_run_id,
        nested=parent_run_id is not None or mlflow.active_run() is not None,
    )
    handle = RunHandle(run.info.run_id, run.info.experiment_id)
    try:
        yield handle
    except KeyboardInterrupt:
        mlflow.end_run(status=KILLED)
        raise
    except BaseException as error:
        with contextlib.suppress(Exception):
            MlflowClient().set_tag(handle.run_id, "failure_reason", str(error)[:5000] or type(error).__name__)
        mlflow.end_run(status=FAILED)
        raise
    else:
        mlflow.end_run(status=FINISHED)


def end_run_by_id(run_id: str, status: str) -> None:
    """Set the final status of a run that is not the active one (a crashed child, say)."""
    MlflowClient().set_terminated(run_id, status=status)


def runs_table(experiment: str, filter_string: str = "", statuses: Sequence[str] = (FINISHED,)) -> pd.DataFrame:
    """Runs of ``experiment`` as a DataFrame (params.*, metrics.*, tags.* columns), as MLflow returns them."""
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return pd.DataFrame()
    status_filter = " OR ".join(f"attributes.status = '{s}'" for s in statuses)
    query = f"({status_filter})" + (f" AND {filter_string}" if filter_string else "")
    return mlflow.search_runs([exp.experiment_id], filter_string=query, output_format="pandas")


def download_artifact(run_id: str, path: str) -> Path:
    """A run's artifact fetched to a local temporary folder."""
    target = tempfile.mkdtemp(prefix="vaebench-")
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=target))
