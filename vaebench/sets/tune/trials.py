"""A study's trials by ask-and-tell: the parent asks, the executor runs, the parent tells.

The parent process asks Optuna for a trial (``study.ask``), builds its configuration from the suggested
values (:func:`~vaebench.sets.tune.space.config_for`) and hands it to the executor as a task like a
suite's point: in this process for one job, in ``--jobs N`` worker processes, or on the Dask cluster. The
worker runs it (:func:`~vaebench.sets.tune.objective.run_trial`, reporting intermediate scores to the
trial in the shared storage so that the pruner can stop it) and returns its outcome; the parent tells the
study. Up to ``jobs`` trials (a cluster: its worker threads) are in flight; the next is asked when one
ends, so that the sampler sees every finished result. No trial is asked after ``--timeout``; a trial
whose worker died is failed without counting and another is asked in its place (at most
:data:`~vaebench.executor.outcomes.RETRIES` times per trial to run).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from vaebench import tracking
from vaebench.errors import VaebenchError
from vaebench.executor.ledger import process_owner
from vaebench.executor.outcomes import RETRIES, TaskOutcome
from vaebench.executor.runs import open_run_workers
from vaebench.executor.tasks import Tasks
from vaebench.sets.tune.objective import (
    TrialOutcome,
    TrialTask,
    run_trial,
    run_trial_on_cluster,
    trial_base,
)
from vaebench.sets.tune.settings import EventHook, TuneSettings, search_space
from vaebench.sets.tune.space import config_for, suggest
from vaebench.sets.tune.storage import _FAILURE_ATTR, _OWNER_ATTR, _PARENT_ATTR
from vaebench.tracking.uris import redact

if TYPE_CHECKING:
    from vaebench.data import Dataset


@dataclass
class TrialLoop:
    """The parent's side of one invocation's trials (the study, what to run, and what is in flight)."""

    settings: TuneSettings
    study: optuna.Study
    parent_run_id: str
    experiment: str
    missing: int
    threads: int | None
    emit: EventHook
    on_cluster: bool = False
    owner: str = field(default_factory=process_owner)
    in_flight: dict[int, optuna.Trial] = field(default_factory=dict)
    lost: int = 0

    def __post_init__(self) -> None:
        self.base = trial_base(self.settings, self.threads)
        self.space = search_space(self.settings)
        timeout = self.settings.timeout
        self.deadline = None if timeout is None else time.time() + timeout

    def run(self, tasks: Tasks, slots: int) -> None:
        """Keep up to ``slots`` trials in flight until ``missing`` have been told (or the time is up)."""
        try:
            while True:
                while len(self.in_flight) < slots and self.wanted():
                    self.ask(tasks)
                if not self.in_flight:
                    return
                self.tell(tasks.next_done())
        except BaseException:
            # Ctrl-C, a stop signal, an error: the trials in flight will never be told; fail them
            # (not counted: a later invocation runs others in their place).
            for trial in self.in_flight.values():
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise

    def wanted(self) -> bool:
        more = self.missing - len(self.in_flight) > 0
        in_time = self.deadline is None or time.time() < self.deadline
        return more and in_time and self.lost <= RETRIES * max(self.missing, 1)

    def ask(self, tasks: Tasks) -> None:
        with warnings.catch_warnings():
            # Optuna warns that its heartbeat is meant for Study.optimize: here the worker that runs the
            # trial beats (vaebench.sets.tune.objective.run_trial), and the parent fails stale trials.
            warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
            trial = self.study.ask()
        trial.set_user_attr(_OWNER_ATTR, self.owner)
        trial.set_user_attr(_PARENT_ATTR, self.parent_run_id)
        self.in_flight[trial.number] = trial
        try:
            config = config_for(self.base, suggest(trial, self.space))
        except VaebenchError as error:  # a combination the configuration refuses: the trial fails, counted
            self.tell(TaskOutcome(trial.number, TrialOutcome("FAIL", reason=str(error))))
            return
        task = TrialTask(self.settings, trial._trial_id, trial.number, config, self.parent_run_id, self.owner)
        tasks.submit(trial.number, run_trial_on_cluster if self.on_cluster else run_trial, task)

    def tell(self, done: TaskOutcome) -> None:
        trial = self.in_flight.pop(done.index)
        outcome: TrialOutcome = done.value if done.ok else self.given_up(trial, done.error or "")
        if outcome.state == "COMPLETE":
            trial.set_user_attr("metrics", outcome.metrics)
            self.study.tell(trial, list(outcome.values))
            self.missing -= 1
        elif outcome.state == "PRUNED":
            self.study.tell(trial, state=TrialState.PRUNED)
            self.missing -= 1
        elif outcome.state == "FAIL":
            trial.set_user_attr(_FAILURE_ATTR, redact(outcome.reason))
            self.study.tell(trial, state=TrialState.FAIL)
            self.missing -= 1
        else:  # its worker died: not counted, another trial is asked in its place
            self.lost += 1
            self.study.tell(trial, state=TrialState.FAIL)
            self.emit(f"Trial {trial.number} lost its worker ({outcome.reason}); marked FAIL (not counted).")
            return
        self.emit(describe(self.study.trials[trial.number], self.settings))

    def given_up(self, trial: optuna.Trial, reason: str) -> TrialOutcome:
        """The executor gave the trial's task up (its workers kept dying): end its run KILLED, if any."""
        key = f"{self.parent_run_id}:{trial.number}"
        for run_id, _tags in tracking.running_runs(self.experiment, f"tags.tune_trial = '{key}'"):
            tracking.close_run(run_id, tracking.KILLED, {"trial_state": "FAIL", "failure_reason": reason})
        return TrialOutcome("LOST", reason=reason)


def run_trials(
    settings: TuneSettings,
    study: optuna.Study,
    dataset: Dataset,
    parent_run_id: str,
    experiment: str,
    uri: str,
    missing: int,
    threads: int,
    emit: EventHook,
    client: Any = None,
) -> None:
    """Run ``missing`` trials of ``study`` on ``dataset`` (the tuning labels) under ``parent_run_id``: in
    this process for one job, else as tasks of the executor (``jobs`` worker processes, or the Dask
    ``client``'s workers), all reporting to the same storage."""
    from vaebench.executor.cluster import cluster_slots

    slots = cluster_slots(client) if client is not None else settings.jobs
    slots = max(1, min(slots, missing))
    in_process = client is None and slots == 1
    loop = TrialLoop(
        settings,
        study,
        parent_run_id,
        experiment,
        missing,
        threads if client is None else None,  # on a cluster each worker divides its own machine's cores
        emit,
        on_cluster=client is not None,
    )
    with open_run_workers(slots, client, in_process, uri, experiment, dataset, emit) as tasks:
        loop.run(tasks, slots)


def describe(trial: FrozenTrial, settings: TuneSettings) -> str:
    """One line for a finished trial: its state, values (or why it has none) and parameters."""
    if trial.state == TrialState.COMPLETE:
        values = ", ".join(f"{n}={v:.4g}" for n, v in zip(settings.objectives, trial.values, strict=True))
        what = f"COMPLETE {values}"
    elif trial.state == TrialState.PRUNED:
        last = trial.last_step
        what = f"PRUNED at epoch {last}" if last is not None else "PRUNED"
    else:
        what = f"{trial.state.name}" + (
            f": {trial.user_attrs[_FAILURE_ATTR]}" if _FAILURE_ATTR in trial.user_attrs else ""
        )
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    return f"trial {trial.number} {what} ({params})"


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
