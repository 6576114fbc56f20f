"""The processes that run trials.

:func:`_optimize` runs trials in the calling process; :func:`_pool` starts the executor's worker processes
(:class:`vaebench.executor.local.LocalPool`) that share the study's storage. :func:`_worker_init` and
:func:`_optimize_worker` are the spawned processes' entry points, pickled by name, so they stay top-level
functions of this module; a worker keeps the dataset and experiment it was started with in
``_worker_state``. :func:`divergence_guard` is the epoch hook of the fresh-seed evaluation's runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

from vaebench import tracking
from vaebench.config import RunConfig
from vaebench.errors import VaebenchError
from vaebench.executor.local import LocalPool
from vaebench.tune.objective import EpochGuard, TrialObjective
from vaebench.tune.settings import DEFAULT_OBJECTIVE, TuneSettings
from vaebench.tune.storage import open_study

if TYPE_CHECKING:
    from vaebench.data import Dataset


_worker_state: dict[str, Any] = {}


def _worker_init(tracking_uri: str, experiment: str, verbosity: int, dataset: Dataset) -> None:
    optuna.logging.set_verbosity(verbosity)
    tracking.configure(tracking_uri, experiment)
    _worker_state.update(experiment=experiment, dataset=dataset)


def _optimize(
    settings: TuneSettings,
    dataset: Dataset,
    parent_run_id: str,
    experiment: str,
    n_trials: int,
    timeout: float | None,
    threads: int,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> None:
    study = open_study(settings)
    objective = TrialObjective(settings, dataset, parent_run_id, experiment, threads)
    study.optimize(
        objective, n_trials=n_trials, timeout=timeout, catch=(VaebenchError,), callbacks=list(callbacks)
    )


def _optimize_worker(
    settings: TuneSettings,
    parent_run_id: str,
    n_trials: int,
    deadline: float | None,
    threads: int,
    index: int,
) -> int:
    timeout = None if deadline is None else max(1e-3, deadline - time.time())
    if settings.sampler_seed is not None:  # each worker its own stream, else they sample the same points
        settings = replace(settings, sampler_seed=settings.sampler_seed + index)
    _optimize(
        settings,
        _worker_state["dataset"],
        parent_run_id,
        _worker_state["experiment"],
        n_trials,
        timeout,
        threads,
    )
    return n_trials


def divergence_guard(config: RunConfig, dataset: Dataset) -> EpochGuard:
    """Stops an evaluation run whose loss diverges (it ends FAILED with the epoch named)."""
    return EpochGuard(config.epochs, dataset, DEFAULT_OBJECTIVE, config.seed)


def _pool(jobs: int, tracking_uri: str, experiment: str, dataset: Dataset) -> LocalPool:
    return LocalPool(jobs, _worker_init, (tracking_uri, experiment, optuna.logging.get_verbosity(), dataset))
