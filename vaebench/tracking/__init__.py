"""Everything vaebench writes to MLflow (reports read through :mod:`vaebench.tracking.reader`).

With its reader, the only place that imports mlflow.

Tracking goes where the user points it (``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else MLflow's own
default, a SQLite ``mlflow.db`` in the working folder). A run that raises is ended FAILED with the reason
as the tag ``failure_reason``; one interrupted by Ctrl-C is ended KILLED; what it logged before stays.
Every param, tag and text artifact written here, and every sentence naming the store, has its passwords
redacted (:func:`vaebench.tracking.uris.redact`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from vaebench import __version__
from vaebench.errors import VaebenchError
from vaebench.tracking.uris import redact, redact_all, runs_table_url, ui_command

FAILED, FINISHED, KILLED = "FAILED", "FINISHED", "KILLED"
_MAX_PARAM_LENGTH = 6000


_project_run_id: list[str] = []
_exported_by_us: list[str] = []
"""A --tracking-uri that MLflow exported as MLFLOW_TRACKING_URI (for subprocesses): not the user's variable."""

EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
"""MLflow 3's UI opens an experiment of this kind on its runs table (not on the GenAI overview)."""


def configure(tracking_uri: str | None, experiment: str) -> str:
    """Point MLflow at ``tracking_uri`` (None: MLflow's default) and ``experiment``; return the URI in use.

    Under ``mlflow run`` (which exports ``MLFLOW_RUN_ID``), the project's run becomes the first run
    vaebench opens (a suite's parent) and its experiment is used; the variable is then removed so that
    child runs, in this process or in workers, are created as new runs rather than resuming it.
    The experiment is tagged as a model-training one (``mlflow.experimentKind``).
    """
    if tracking_uri:
        if os.environ.get("MLFLOW_TRACKING_URI") != tracking_uri:
            _exported_by_us[:] = [tracking_uri]
        mlflow.set_tracking_uri(tracking_uri)
    _check_server(mlflow.get_tracking_uri())
    # Reports read small artifacts back; MLflow would draw a download bar on stderr for each one.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    project_run_id = os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        if project_run_id:
            _project_run_id[:] = [project_run_id]
            run = MlflowClient().get_run(project_run_id)
            chosen = mlflow.set_experiment(experiment_id=run.info.experiment_id)
        else:
            try:
                chosen = mlflow.set_experiment(experiment)
            except MlflowException:
                # Two invocations creating the experiment at once: one create fails, the experiment exists.
                chosen = mlflow.set_experiment(experiment)
        if chosen.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client = MlflowClient()
            try:
                client.set_experiment_tag(chosen.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            except MlflowException:
                # Two invocations tagging the new experiment at once: one insert fails, the tag is there.
                tags = client.get_experiment(chosen.experiment_id).tags
                if tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                    raise
    except MlflowException as error:
        raise VaebenchError(
            redact(f"MLflow at {mlflow.get_tracking_uri()} could not be used: {str(error).splitlines()[0]}")
        ) from None
    return mlflow.get_tracking_uri()


def resolve_uri(tracking_uri: str | None) -> str:
    """The tracking URI a command given ``tracking_uri`` (None: MLflow's default) will use."""
    return tracking_uri or mlflow.get_tracking_uri()


@dataclass(frozen=True)
class UiLocation:
    """Where a run's experiment is seen in the MLflow UI; every field is redacted."""

    uri: str  # the tracking store
    url: str  # the experiment's runs table
    command: str | None  # ``mlflow ui ...`` that serves a local store (None: a server serves itself)


def ui_location(run_id: str) -> UiLocation:
    """The runs table (and the command that serves it) of the experiment holding ``run_id``."""
    uri = mlflow.get_tracking_uri()
    experiment_id = MlflowClient().get_run(run_id).info.experiment_id
    users = os.environ.get("MLFLOW_TRACKING_URI")
    command = ui_command(uri, None if users in _exported_by_us else users)
    return UiLocation(redact(uri), runs_table_url(uri, experiment_id), command)


def _check_server(uri: str, timeout: float = 10.0) -> None:
    """A tracking server that does not answer is one sentence now, not minutes of MLflow's retries."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            pass
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise VaebenchError(
            redact(f"The MLflow tracking server at {uri} could not be reached ({reason}).")
        ) from None


def active_experiment_name() -> str:
    """The name of the experiment runs are written to."""
    from mlflow.tracking.fluent import _get_experiment_id

    return MlflowClient().get_experiment(_get_experiment_id()).name


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


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Silence one MLflow logger's warnings for a block (its pickle warning is printed on every run)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@dataclass
class RunHandle:
    """One open MLflow run: log to it through these methods, never through mlflow directly."""

    run_id: str
    experiment_id: str

    @property
    def client(self) -> MlflowClient:
        return MlflowClient()

    def log_params(self, params: dict[str, Any]) -> None:
        clean = {k: redact(str(v))[:_MAX_PARAM_LENGTH] for k, v in params.items()}
        mlflow.log_params(clean, run_id=self.run_id)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step, run_id=self.run_id)

    def log_curves(self, curves: dict[str, Sequence[float]], first_step: int = 1) -> None:
        """Several stepped metrics (a loss and its parts per epoch, say) written together in batches."""
        metrics = [
            Metric(name, float(v), 0, first_step + i)
            for name, values in curves.items()
            for i, v in enumerate(values)
        ]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000], synchronous=True)

    def set_tags(self, tags: dict[str, Any]) -> None:
        batch = [RunTag(key, redact(str(value))) for key, value in tags.items()]
        self.client.log_batch(self.run_id, tags=batch, synchronous=True)

    def log_input(self, name: str, digest: str, profile: dict[str, int], source: str) -> None:
        """The run's input in MLflow's dataset tracking: the UI's Dataset column shows its name and digest,
        and its details the shape (``profile``) and where it came from (``source``)."""
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag

        class _Data(MetaDataset):
            @property
            def profile(self) -> dict[str, int]:
                return profile

            def to_dict(self) -> dict[str, str]:
                return {**super().to_dict(), "profile": json.dumps(profile)}

        data = _Data(CodeDatasetSource({"source": source[:500]}), name=name, digest=digest)
        context = InputTag(key="mlflow.data.context", value="training")
        inputs = [DatasetInput(data._to_mlflow_entity(), tags=[context])]
        for attempt in range(3):
            try:
                self.client.log_inputs(self.run_id, inputs)
                return
            except MlflowException:
                # Parallel children registering the same dataset at once: the store's unique key lets one
                # insert win; the others find the dataset there on the next attempt and only link to it.
                if attempt == 2:
                    raise

    def log_figure(self, figure: Figure, artifact_file: str) -> None:
        """``figure`` as the PNG artifact ``artifact_file``, drawn once
        (:func:`~vaebench.evaluate.figures.save_png`)."""
        from vaebench.evaluate.figures import save_png

        self._log_written(artifact_file, partial(save_png, figure))

    def log_table(self, table: pd.DataFrame, artifact_file: str) -> None:
        """A DataFrame as an artifact in the format its suffix names: ``.parquet`` (zstd-compressed, typed
        columns: a large table such as the latent codes of many cells), ``.md`` (Markdown), else CSV.

        Every format is redacted as text artifacts are: CSV and Markdown as one text, Parquet in its
        string columns (:func:`_redact_strings`), since a column of text (a cell id, a label) is where a
        URI could sit; numbers cannot hold one.
        """
        if artifact_file.endswith(".parquet"):
            self._log_written(artifact_file, partial(write_parquet, _redact_strings(table)))
            return
        text = table.to_markdown() if artifact_file.endswith(".md") else table.to_csv(index=False)
        self.log_text(text, artifact_file)

    def _log_written(self, artifact_file: str, write: Callable[[Path], None]) -> None:
        """The file ``write(path)`` makes, logged as the artifact ``artifact_file``."""
        folder, name = posixpath.split(artifact_file)
        with tempfile.TemporaryDirectory() as scratch:
            write(Path(scratch) / name)
            self.log_file(Path(scratch) / name, folder or None)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, redact(text), artifact_file)

    def log_dict(self, data: dict[str, Any], artifact_file: str) -> None:
        self.log_text(json.dumps(redact_all(data), indent=2, default=str), artifact_file)

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
        with self._activated(), _quiet("mlflow.pytorch"):
            # Pickled (not the traced 'pt2' format, which fixes the batch size it was traced with): loading
            # it needs vaebench importable, which its requirements say.
            mlflow.pytorch.log_model(
                model.cpu(),
                name=name,
                signature=signature,
                serialization_format="pickle",
                pip_requirements=[f"torch=={torch.__version__}", f"vaebench=={__version__}"],
            )

    def log_model_folder(self, save: Callable[[Path], None], name: str = "model") -> None:
        """A model saved by its own library (``save(folder)`` writes it, e.g. scvi-tools' ``model.pt``) as
        the run's artifact folder ``name``."""
        with tempfile.TemporaryDirectory() as scratch:
            save(Path(scratch))
            self.client.log_artifacts(self.run_id, scratch, name)

    def log_sklearn_model(self, estimator: Any, name: str = "model") -> None:
        import mlflow.sklearn
        import sklearn

        # PCA has transform() and no predict(), so MLflow logs no pyfunc flavour and warns so on every run:
        # the model is loaded with mlflow.sklearn.load_model (the README says so).
        with self._activated(), _quiet("mlflow.sklearn"):
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


def write_parquet(table: pd.DataFrame, path: Path, rows_per_group: int = 100_000) -> None:
    """``table`` (its index left out) as a zstd-compressed Parquet file, converted to Arrow
    ``rows_per_group`` rows at a time, one row group each: a large table is never copied whole into Arrow
    beside itself (``DataFrame.to_parquet`` would)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(table, preserve_index=False)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for start in range(0, max(len(table), 1), rows_per_group):
            part = table.iloc[start : start + rows_per_group]
            writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))


def _redact_strings(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with :func:`redact` applied to every string of its text and categorical columns; the
    numeric columns are shared with ``table``, not copied (a million cells' codes stay one copy)."""
    redacted = {}
    for name, column in table.items():
        if isinstance(column.dtype, pd.CategoricalDtype):
            categories = [redact(c) if isinstance(c, str) else c for c in column.cat.categories]
            if categories != list(column.cat.categories):
                redacted[name] = column.cat.rename_categories(categories)
        elif column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            clean = column.map(lambda value: redact(value) if isinstance(value, str) else value)
            if not clean.equals(column):
                redacted[name] = clean
    if not redacted:
        return table
    table = table.copy(deep=False)
    for name, column in redacted.items():
        table[name] = column
    return table


@contextlib.contextmanager
def start_run(
    run_name: str, tags: dict[str, Any] | None = None, parent_run_id: str | None = None
) -> Iterator[RunHandle]:
    """Open a run (nested under ``parent_run_id`` if given) and close it with the right status."""
    project_run_id = _project_run_id.pop() if _project_run_id and parent_run_id is None else None
    run = mlflow.start_run(
        run_id=project_run_id,
        run_name=None if project_run_id else run_name,
        tags={k: redact(str(v)) for k, v in (tags or {}).items()},
        parent_run_id=parent_run_id,
        nested=parent_run_id is not None or mlflow.active_run() is not None,
    )
    handle = RunHandle(run.info.run_id, run.info.experiment_id)
    try:
        yield handle
    except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM/SIGHUP (StopRequested)
        # A stop signal's KeyboardInterrupt (vaebench.executor.stopping.StopRequested) names its reason.
        reason = getattr(error, "reason", None) or "interrupted (Ctrl-C)"
        with contextlib.suppress(Exception):
            MlflowClient().set_tag(handle.run_id, "failure_reason", redact(reason))
            kill_running_children(handle.run_id, reason)
        mlflow.end_run(status=KILLED)
        raise
    except BaseException as error:
        with contextlib.suppress(Exception):
            reason = redact(str(error))[:5000] or type(error).__name__
            MlflowClient().set_tag(handle.run_id, "failure_reason", reason)
        mlflow.end_run(status=FAILED)
        raise
    else:
        mlflow.end_run(status=FINISHED)


def kill_running_children(parent_run_id: str, reason: str, config_hash: str | None = None) -> list[str]:
    """End KILLED, with ``reason``, the runs nested under ``parent_run_id`` (of ``config_hash`` only, if
    given) that are still RUNNING: those of workers that were killed before they could close their own."""
    client = MlflowClient()
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    query = f"attributes.status = 'RUNNING' AND tags.`mlflow.parentRunId` = '{parent_run_id}'"
    if config_hash is not None:
        query += f" AND tags.config_hash = '{config_hash}'"
    closed = []
    for run in client.search_runs([experiment_id], query, max_results=1000):
        client.set_tag(run.info.run_id, "failure_reason", redact(reason))
        client.set_terminated(run.info.run_id, status=KILLED)
        closed.append(run.info.run_id)
    return closed


def end_run_by_id(run_id: str, status: str) -> None:
    """Set the final status of a run that is not the active one (a crashed child, say)."""
    MlflowClient().set_terminated(run_id, status=status)


def _experiment_id(experiment: str) -> str | None:
    exp = mlflow.get_experiment_by_name(experiment)
    return exp.experiment_id if exp is not None else None


def _search(experiment: str, filter_string: str) -> list[Any]:
    experiment_id = _experiment_id(experiment)
    if experiment_id is None:
        return []
    client = MlflowClient()
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def finished_runs_by_tag(
    experiment: str, tag: str, values: Sequence[str], filter_string: str = ""
) -> dict[str, str]:
    """For each value of ``tag`` among ``values``, the id of a FINISHED run of ``experiment`` carrying it
    (among the runs matching ``filter_string``, if given).

    MLflow's search has no ``IN`` for tags, so FINISHED runs are listed and filtered here.
    """
    wanted = set(values)
    found: dict[str, str] = {}
    query = f"attributes.status = '{FINISHED}'" + (f" AND {filter_string}" if filter_string else "")
    for run in _search(experiment, query):
        value = run.data.tags.get(tag)
        if value in wanted:
            found.setdefault(value, run.info.run_id)
    return found


def runs_frame(runs: Sequence[Any]) -> pd.DataFrame:
    """MLflow run objects as one row each: run_id, status, params.*, metrics.*, tags.* columns."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "status": run.info.status,
            "start_time": run.info.start_time,
        }
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def experiment_runs(experiment: str, filter_string: str = "") -> pd.DataFrame:
    """Every FINISHED run of ``experiment`` matching ``filter_string``, as a :func:`runs_frame`."""
    query = f"attributes.status = '{FINISHED}'" + (f" AND {filter_string}" if filter_string else "")
    return runs_frame(_search(experiment, query))


def run_handle(run_id: str) -> RunHandle:
    """A handle to log more to an existing run (a suite's parent, after its children)."""
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException:
        raise VaebenchError(
            redact(f"There is no MLflow run {run_id!r} at {mlflow.get_tracking_uri()}.")
        ) from None
    return RunHandle(run.info.run_id, run.info.experiment_id)


def running_runs(experiment: str, filter_string: str = "") -> list[tuple[str, dict[str, str]]]:
    """(run id, tags) of every RUNNING run of ``experiment`` matching ``filter_string``."""
    query = "attributes.status = 'RUNNING'" + (f" AND {filter_string}" if filter_string else "")
    return [(run.info.run_id, dict(run.data.tags)) for run in _search(experiment, query)]


def close_run(
    run_id: str, status: str, tags: dict[str, Any] | None = None, remove_tags: Sequence[str] = ()
) -> None:
    """Give a run that is no longer active its final ``status``, set ``tags`` and delete ``remove_tags``.

    A tuning trial stopped by the pruner leaves :func:`start_run` as FAILED with a ``failure_reason``;
    this turns it into KILLED with ``trial_state=PRUNED``.
    """
    client = MlflowClient()
    client.set_terminated(run_id, status=status)
    if tags:
        batch = [RunTag(k, redact(str(v))) for k, v in tags.items()]
        client.log_batch(run_id, tags=batch, synchronous=True)
    existing = client.get_run(run_id).data.tags
    for key in remove_tags:
        if key in existing:
            client.delete_tag(run_id, key)


def run_metrics(run_id: str) -> dict[str, float]:
    """The latest value of every metric of a run."""
    return dict(MlflowClient().get_run(run_id).data.metrics)
