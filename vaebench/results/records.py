"""A finished run as a record, and records as the one-row-per-run table every result is computed from.

A :class:`RunRecord` is what a report needs of one run: its identity (model, the entry it stands for, beta,
seed, run id, status), the data it was scored on, its flat parameters and its metrics (the last value of
each). Records come from the executor's results in memory (:meth:`RunRecord.of_result`) or from MLflow
through :mod:`vaebench.tracking.reader`; nothing here reads or writes anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vaebench.data.dataset import NO_LABELS
from vaebench.errors import VaebenchError
from vaebench.evaluate.collapse import ACTIVE_FRACTION, ACTIVE_UNITS, KL_TOTAL

if TYPE_CHECKING:
    from vaebench.executor.runs import RunResult

LOSS_PART_PREFIX = "train.loss."
"""Each part of a torch model's loss is logged per epoch as ``train.loss.<part>``; runs keep the last epoch's."""
BETA_KL = "train.loss.beta_kl"
RAW_KL = "train.kl"
"""The KL itself, ``beta_kl / beta``: what a beta sweep trades against the reconstruction."""
IDENTITY = ("run_id", "model", "entry", "beta", "seed", "dataset", "label_key", "latent_dims")
"""The leading columns of :func:`records_frame`, before the metrics."""


@dataclass(frozen=True)
class RunRecord:
    """One finished run: who it is, what it was scored on, its settings and its scores."""

    run_id: str
    model: str
    seed: int | None
    entry: str = ""
    """The name the run is reported under: its model, or a tuned configuration's name (``ae (tuned)``)."""
    beta: float | None = None
    """None for a model without a beta."""
    status: str = "FINISHED"
    dataset: str = ""
    label_key: str = ""
    """The labels it was scored on, ``none`` for data without labels."""
    latent_dims: int | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.entry:
            object.__setattr__(self, "entry", self.model)
        if self.latent_dims is None:
            object.__setattr__(self, "latent_dims", latent_dims_of(self.metrics))

    @classmethod
    def of_result(cls, result: RunResult, dataset: str, label_key: str | None) -> RunRecord:
        """The record of an executor's result (:class:`vaebench.executor.runs.RunResult`), scored on the
        data named ``dataset`` with labels ``label_key`` (None: no labels)."""
        from vaebench.models import get_model

        config = result.config
        return cls(
            run_id=result.run_id or "",
            model=config.model,
            seed=config.seed,
            entry=str(result.spec.tags.get("entry", config.model)),
            beta=config.beta if get_model(config.model).has_beta else None,
            status=result.status,
            dataset=dataset,
            label_key=label_key or NO_LABELS,
            params={k: str(v) for k, v in config.params().items()},
            metrics={k: float(v) for k, v in result.metrics.items()},
            tags={k: str(v) for k, v in result.spec.tags.items()},
        )


def latent_dims_of(metrics: Mapping[str, float]) -> int | None:
    """The width of a run's latent code as its metrics give it: one ``latent.kl.z<d>`` per dimension for a
    model with a posterior, else active units over their fraction (None when neither says)."""
    per_dimension = [k for k in metrics if k.startswith(f"{KL_TOTAL}.z")]
    if per_dimension:
        return len(per_dimension)
    units, fraction = metrics.get(ACTIVE_UNITS), metrics.get(ACTIVE_FRACTION)
    if units is None or not fraction or math.isnan(fraction):
        return None
    return round(units / fraction)


def records_frame(records: Iterable[RunRecord], metrics: Iterable[str]) -> pd.DataFrame:
    """One row per record: :data:`IDENTITY`, then each of ``metrics`` (NaN where a run lacks it), then the
    final-epoch loss parts any run has (``train.loss.<part>``) and the raw KL, ``beta_kl / beta``."""
    records = list(records)
    if not records:
        raise VaebenchError(
            "There are no finished runs to report on; run a suite first (vaebench run --all)."
        )
    rows: list[dict[str, Any]] = [
        {
            "run_id": r.run_id,
            "model": r.model,
            "entry": r.entry,
            "beta": np.nan if r.beta is None else float(r.beta),
            "seed": r.seed,
            "dataset": r.dataset,
            "label_key": r.label_key,
            "latent_dims": np.nan if r.latent_dims is None else float(r.latent_dims),
        }
        for r in records
    ]
    frame = pd.DataFrame(rows, columns=list(IDENTITY))
    frame["seed"] = pd.array(frame["seed"], dtype="Int64")
    for metric in metrics:
        frame[metric] = [float(r.metrics.get(metric, np.nan)) for r in records]
    parts = sorted({k for r in records for k in r.metrics if k.startswith(LOSS_PART_PREFIX)})
    for part in parts:
        frame[part] = [float(r.metrics.get(part, np.nan)) for r in records]
    if BETA_KL in frame:
        frame[RAW_KL] = frame[BETA_KL] / frame["beta"].where(frame["beta"] > 0)
    return frame


def beside(records: Iterable[RunRecord], others: Iterable[RunRecord]) -> list[RunRecord]:
    """The ``others`` that can stand beside ``records`` in one report: scored on the same data and labels,
    each (entry, beta, seed) once, and none that ``records`` already hold (the suite's own ``pca``, say)."""
    records = list(records)
    data = {r.dataset for r in records}
    labels = {r.label_key for r in records}
    known = {(r.entry, r.beta, r.seed) for r in records}
    chosen = []
    for other in others:
        key = (other.entry, other.beta, other.seed)
        if other.dataset in data and other.label_key in labels and key not in known:
            known.add(key)
            chosen.append(other)
    return chosen
