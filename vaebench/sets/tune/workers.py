"""The processes that run trials.

:func:`_optimize` runs a study's trials in the calling process (one job). With several jobs or a Dask
cluster each trial is a task of the executor (:func:`vaebench.executor.tasks.run_tasks`), in worker
processes sharing the study's storage: :func:`_worker_init` starts a worker, :func:`run_trial` (locally)
and :func:`run_trial_on_cluster` (on Dask) run one trial. They are pickled by name, so they stay top-level
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
from vaebench.sets.tune.objective import EpochGuard, TrialObjective
from vaebench.sets.tune.settings import DEFAULT_OBJECTIVE, TuneSettings
from vaebench.sets.tune.storage import make_sampler, open_storage, open_study, recover_dead_trials

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
    """The trials of a study with one job, in this process."""
    study = open_study(settings)
    objective = TrialObjective(settings, dataset, parent_run_id, experiment, threads)
    study.optimize(
        objective, n_trials=n_trials, timeout=timeout, catch=(VaebenchError,), callbacks=list(callbacks)
    )


def run_trial(
    settings: TuneSettings, parent_run_id: str, deadline: float | None, threads: int, index: int
) -> int:
    """One trial in a worker process (a task of :func:`vaebench.executor.tasks.run_tasks`): first fail and
    queue again the trials whose process on this machine died, then run the next trial (a queued retry
    first). Returns the number of trials run (0 once the study's deadline has passed)."""
    if deadline is not None and time.time() >= deadline:
        return 0
    storages = _worker_state.setdefault("storages", {})
    if settings.storage not in storages:
        storages[settings.storage] = open_storage(settings)
    study = open_study(settings, storages[settings.storage])
    recover_dead_trials(study, settings)
    if settings.sampler_seed is not None:
        # Each task its own stream, else they sample the same points; a task run again after its worker
        # died finds more trials in the study, so it does not repeat its first attempt's point either.
        seed = settings.sampler_seed + index + 10_000 * len(study.get_trials(deepcopy=False))
        study.sampler = make_sampler(replace(settings, sampler_seed=seed))
    objective = TrialObjective(
        settings,
        _worker_state["dataset"],
        parent_run_id,
        _worker_state["experiment"],
        threads,
        _worker_state.get("epoch_check"),
    )
    study.optimize(objective, n_trials=1, catch=(VaebenchError,))
    return 1


def run_trial_on_cluster(
    settings: TuneSettings, parent_run_id: str, deadline: float | None, index: int
) -> int:
    """:func:`run_trial` as a Dask task: its share of the machine's cores, and a trial whose client went
    away stops at its next epoch (its run ends KILLED, the trial FAIL)."""
    from vaebench.executor.cluster import StopIfCancelled, worker_threads
    from vaebench.executor.stopping import StopRequested

    _worker_state["epoch_check"] = StopIfCancelled
    try:
        return run_trial(settings, parent_run_id, deadline, worker_threads(), index)
    except StopRequested:
        return 0


def divergence_guard(config: RunConfig, dataset: Dataset) -> EpochGuard:
    """Stops an evaluation run whose loss diverges (it ends FAILED with the epoch named)."""
    return EpochGuard(config.epochs, dataset, DEFAULT_OBJECTIVE, config.seed)
