"""The one reader of finished runs for reports: MLflow runs as :class:`~vaebench.results.RunRecord`.

``vaebench report`` reads a suite's runs (those its parent's ``suite/grid.json`` names), or the latest
suite of an experiment, and the tuned models' fresh-seed evaluations (``vaebench.role`` = ``tune-eval``,
:mod:`vaebench.sets.tune.evaluation`); a suite's own report after its runs reads only what its executor
did not hold in memory (the points reused from earlier runs, the tuned entries and the t-SNE maps).
"""

from __future__ import annotations

import io
import json
import math
import tempfile
from collections.abc import Sequence
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from vaebench.errors import VaebenchError
from vaebench.results.records import RunRecord
from vaebench.tracking import FINISHED, _search

SUITE_ROLE = f"tags.`vaebench.role` = 'suite' AND attributes.status = '{FINISHED}'"
TUNED = "tags.`vaebench.role` = 'tune-eval' AND tags.tuned != 'superseded'"
"""The fresh-seed evaluations of tuned models (and of their baseline) that are still the study's best."""
TSNE_MAP = "latent/tsne2d.csv"
UMAP_MAP = "latent/umap.csv"
LATENT_CODES = ("latent/latent_codes.parquet", "latent/latent_codes.csv")
"""The two names a run's latent codes go by (:func:`vaebench.runner.latent_codes_artifact`): Parquet from
``vaebench.runner.PARQUET_FROM_CELLS`` cells on, CSV below."""


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "", "None") else None
    except ValueError:
        return None
    return None if value is None or math.isnan(value) else value


def record_of(run: Any) -> RunRecord:
    """An MLflow run (``mlflow.entities.Run``) as a record: identity from its tags (``model``, ``entry``,
    ``beta``, ``latent_dims``) and params (``seed``, ``dataset.name``, ``dataset.label_key``)."""
    params, tags = dict(run.data.params), dict(run.data.tags)
    model = tags.get("model", params.get("model", ""))
    seed = _number(params.get("seed", tags.get("seed")))
    dims = _number(tags.get("latent_dims", params.get("latent_dim")))
    return RunRecord(
        run_id=run.info.run_id,
        model=model,
        seed=None if seed is None else int(seed),
        entry=tags.get("entry", model),
        beta=_number(tags.get("beta")),
        status=run.info.status,
        dataset=params.get("dataset.name", ""),
        label_key=params.get("dataset.label_key", ""),
        latent_dims=None if dims is None else int(dims),
        params=params,
        metrics=dict(run.data.metrics),
        tags=tags,
    )


def records(run_ids: Sequence[str]) -> list[RunRecord]:
    """The named runs as records, in the order given."""
    client = MlflowClient()
    return [record_of(client.get_run(run_id)) for run_id in run_ids]


def artifact_text(run_id: str, path: str) -> str | None:
    """The text of a run's artifact, or None where the run has no such artifact."""
    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{path}")
    except Exception:  # MLflow raises several types for a missing artifact
        return None


def suite_run_ids(parent_run_id: str) -> list[str]:
    """The runs a suite invocation covers: those it trained and those it found already finished."""
    text = artifact_text(parent_run_id, "suite/grid.json")
    if text is None:
        raise VaebenchError(f"Run {parent_run_id} is not a finished suite run (it has no suite/grid.json).")
    return [p["run_id"] for p in json.loads(text)["points"] if p["run_id"] and p["status"] != "failed"]


def suite_records(parent_run_id: str) -> list[RunRecord]:
    """The finished runs of one suite invocation, as records."""
    return records(suite_run_ids(parent_run_id))


def latest_suite_run(experiment: str) -> str:
    """The parent run id of the latest finished suite of ``experiment``."""
    runs = _search(experiment, SUITE_ROLE)
    if not runs:
        raise VaebenchError(
            f"Experiment {experiment!r} has no finished suite run; run one with vaebench run --all."
        )
    return max(runs, key=lambda r: r.info.start_time).info.run_id


def tuned_records(experiment: str | None) -> list[RunRecord]:
    """The fresh-seed evaluations of the tuned models of ``experiment`` that are still best, with those of
    their baseline (so that a tuned entry has its pairs), as records; none without an experiment."""
    if not experiment:
        return []
    return [record_of(run) for run in _search(experiment, f"attributes.status = '{FINISHED}' AND {TUNED}")]


def tsne_map(run_id: str) -> pd.DataFrame | None:
    """A run's logged 2-d t-SNE (``latent/tsne2d.csv``: cell id, label where there are labels, x, y)."""
    text = artifact_text(run_id, TSNE_MAP)
    return None if text is None else pd.read_csv(io.StringIO(text))


def umap_map(run_id: str) -> pd.DataFrame | None:
    """A run's logged UMAP (``latent/umap.csv``: cell id, label where there are labels, x, y), or None
    where the run drew none (``--maps`` without umap)."""
    text = artifact_text(run_id, UMAP_MAP)
    return None if text is None else pd.read_csv(io.StringIO(text))


def latent_codes(run_id: str) -> pd.DataFrame | None:
    """A run's logged latent codes (cell id, label where there are labels, ``z0`` ... ``z<k>``, one row per
    cell) under whichever of its two names (:data:`LATENT_CODES`) the run has, or None where it has none."""
    client = MlflowClient()
    logged = {item.path for item in client.list_artifacts(run_id, "latent")}
    for path in LATENT_CODES:
        if path in logged:
            with tempfile.TemporaryDirectory() as scratch:
                local = client.download_artifacts(run_id, path, scratch)
                return pd.read_parquet(local) if path.endswith(".parquet") else pd.read_csv(local)
    return None
