"""The processes that run trials and evaluation runs.

:func:`_optimize` runs trials in the calling process; :func:`_pool` spawns worker processes that share the
study's storage. :func:`_worker_init`, :func:`_optimize_worker` and :func:`_evaluate_one` are the spawned
processes' entry points, pickled by name, so they stay top-level functions of this module; a worker keeps
the dataset and experiment it was started with in ``_worker_state``.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

from vaebench import tracking
from vaebench.config import RunConfig
from vaebench.errors import VaebenchError
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


def _evaluate_one(
    config: RunConfig, tags: dict[str, Any], parent_run_id: str, dataset: Dataset | None = None
) -> tuple[str | None, dict[str, float], str]:
    """Train and score one evaluation point; returns (run id, metrics, failure reason)."""
    from vaebench.runner import run_and_log

    data = dataset if dataset is not None else _worker_state["dataset"]
    try:
        guard = EpochGuard(config.epochs, data, DEFAULT_OBJECTIVE, config.seed)
        outcome, run_id = run_and_log(
            config, tags=tags, parent_run_id=parent_run_id, dataset=data, on_epoch=guard
        )
    except VaebenchError as error:
        return None, {}, str(error)
    except Exception as error:  # one failing seed must not lose the others; its run is marked FAILED
        return None, {}, f"{type(error).__name__}: {error}"
    return run_id, {k: float(v) for k, v in outcome.metrics.items()}, ""


def _pool(jobs: int, tracking_uri: str, experiment: str, dataset: Dataset) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(tracking_uri, experiment, optuna.logging.get_verbosity(), dataset),
    )
