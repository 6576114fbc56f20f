"""Sets of runs: which are already done, and running the rest in this process or in worker processes.

A :class:`RunSpec` is one configuration to train and score as a nested MLflow run of
:func:`vaebench.runner.run_and_log`. :func:`reuse_finished` finds the specs whose configuration (its
``config_hash``, the data's hash included) already has a FINISHED run; :func:`execute` runs the others
and yields a :class:`RunResult` per spec as each ends, a failing run recorded (FAILED, with its reason)
rather than raised, so that one bad point never stops the rest.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from vaebench import tracking
from vaebench.config import RunConfig
from vaebench.errors import VaebenchError
from vaebench.executor.ledger import Ledger, process_owner
from vaebench.executor.stopping import StopRequested
from vaebench.executor.tasks import Tasks, open_tasks

if TYPE_CHECKING:
    from vaebench.data import Dataset
    from vaebench.runner import EpochHook

DatasetSource = Callable[[RunConfig], "Dataset"]
"""A top-level function (pickled by name) giving the dataset of a configuration, cached per process."""
EpochHookFactory = Callable[[RunConfig, "Dataset"], "EpochHook | None"]

FINISHED, SKIPPED, FAILED = "finished", "skipped", "failed"


@dataclass(frozen=True)
class RunSpec:
    """One run to make: its configuration and the tags it carries besides the configuration's own."""

    config: RunConfig
    tags: dict[str, Any] = field(default_factory=dict)
    key: Any = None  # the caller's handle on the spec (an entry's index, say)


@dataclass
class RunResult:
    """What became of one spec: ``finished``, ``skipped`` (an earlier FINISHED run is reused) or ``failed``."""

    spec: RunSpec
    status: str
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    @property
    def config(self) -> RunConfig:
        return self.spec.config


@dataclass(frozen=True)
class RunJob:
    """What every run of one :func:`execute` shares: its parent run, where its data come from, a hook."""

    parent_run_id: str
    data: DatasetSource | None = None  # None: the dataset the worker was started with
    epoch_hook: EpochHookFactory | None = None


def threads_per_job(jobs: int) -> int:
    """The CPU cores divided between the parallel runs (at least one thread each)."""
    return max(1, (os.cpu_count() or 1) // jobs)


def reuse_finished(
    specs: Sequence[RunSpec],
    data_hash: str,
    experiment: str,
    filters: Sequence[str] = ("",),
    with_metrics: bool = False,
) -> tuple[list[RunSpec], list[RunResult]]:
    """Split ``specs`` into those to run and those whose configuration already has a FINISHED run among
    the runs of ``experiment`` matching one of ``filters`` (MLflow filter strings; "" matches all)."""
    hashes = [spec.config.config_hash(data_hash) for spec in specs]
    finished: dict[str, str] = {}
    for filter_string in filters:
        for value, run_id in tracking.finished_runs_by_tag(
            experiment, "config_hash", hashes, filter_string
        ).items():
            finished.setdefault(value, run_id)
    todo, reused = [], []
    for spec, config_hash in zip(specs, hashes, strict=True):
        run_id = finished.get(config_hash)
        if run_id is None:
            todo.append(spec)
            continue
        metrics = tracking.run_metrics(run_id) if with_metrics else {}
        reused.append(RunResult(spec, SKIPPED, run_id=run_id, metrics=metrics))
    return todo, reused


_worker_dataset: list[Dataset] = []


def worker_dataset() -> Dataset:
    """The dataset this worker was started with (:func:`init_worker_state`)."""
    return _worker_dataset[0]


def init_worker_state(tracking_uri: str | None, experiment: str, dataset: Dataset | None) -> None:
    """What a worker that runs runs or trials starts with: MLflow pointed at the store (not in this process,
    ``tracking_uri`` None: it is, and under ``mlflow run`` at the project's experiment), and the dataset."""
    if tracking_uri is not None:
        tracking.configure(tracking_uri, experiment)
    if dataset is not None:
        _worker_dataset[:] = [dataset]


def run_one(spec: RunSpec, job: RunJob, dataset: Dataset | None = None) -> RunResult:
    """Train and score one spec as a nested run; failures are recorded (the run is FAILED), not raised."""
    from vaebench.runner import run_and_log

    started: list[str] = []
    try:
        if dataset is not None:
            data = dataset
        else:
            data = job.data(spec.config) if job.data is not None else _worker_dataset[0]
        hook = job.epoch_hook(spec.config, data) if job.epoch_hook is not None else None
        outcome, run_id = run_and_log(
            spec.config,
            tags={**spec.tags, "run_owner": process_owner()},
            parent_run_id=job.parent_run_id,
            dataset=data,
            on_epoch=hook,
            on_start=started.append,
        )
    except VaebenchError as error:
        return RunResult(spec, FAILED, run_id=started[0] if started else None, reason=str(error))
    except Exception as error:  # a bug in one run must not stop the others; its run is marked FAILED
        reason = f"{type(error).__name__}: {error}"
        return RunResult(spec, FAILED, run_id=started[0] if started else None, reason=reason)
    # The last epoch's loss parts too (``train.loss.<part>``, MLflow's latest value of each curve): reports
    # are made from these metrics.
    parts = {f"train.loss.{part}": curve[-1] for part, curve in outcome.training.parts.items() if curve}
    metrics = {k: float(v) for k, v in {**outcome.metrics, **parts}.items()}
    return RunResult(spec, FINISHED, run_id=run_id, metrics=metrics)


def run_on_worker(spec: RunSpec, job: RunJob) -> RunResult:
    """One run as a Dask task: its share of the machine's threads, a dead earlier attempt's run ended, and
    the run ended KILLED once its client went away."""
    from vaebench.executor.cluster import CancellableHook, worker_threads

    if spec.config.threads is None:
        spec = replace(spec, config=spec.config.with_settings(threads=worker_threads()))
    data = job.data(spec.config) if job.data is not None else _worker_dataset[0]
    config_hash = spec.config.config_hash(data.content_hash())
    Ledger.close_lost_attempts(job.parent_run_id, config_hash=config_hash)
    job = replace(job, epoch_hook=CancellableHook(job.epoch_hook))
    try:
        return run_one(spec, job, data)
    except StopRequested as stop:
        return RunResult(spec, FAILED, reason=f"killed: {stop.reason}")


def execute(
    specs: Sequence[RunSpec],
    job: RunJob,
    *,
    jobs: int,
    tracking_uri: str,
    experiment: str,
    dataset: Dataset | None = None,
    cluster: Any = None,
    on_retry: Callable[[str], None] | None = None,
) -> Iterator[RunResult]:
    """Run ``specs`` in this process (``jobs`` = 1), in ``jobs`` worker processes, or as tasks of the Dask
    ``cluster`` (a client from :func:`vaebench.executor.cluster.connect`), yielding as each ends.

    ``dataset`` (if given) is what every run trains on, sent once to each worker; otherwise each run's
    dataset comes from ``job.data``. A run whose workers kept dying is a failed result with the reason.
    """
    if not specs:
        return

    def restarted(message: str) -> None:
        # Between two local pools no worker runs: what is still RUNNING was a lost attempt's.
        Ledger.close_lost_attempts(job.parent_run_id)
        if on_retry is not None:
            on_retry(message)

    in_process = cluster is None and (jobs == 1 or len(specs) <= 1)
    workers = open_run_workers(
        min(jobs, len(specs)), cluster, in_process, tracking_uri, experiment, dataset, restarted
    )
    with workers as tasks:
        for index, spec in enumerate(specs):
            tasks.submit(index, run_on_worker if cluster is not None else run_one, spec, job)
        while len(tasks):
            outcome = tasks.next_done()
            spec = specs[outcome.index]
            yield outcome.value if outcome.ok else RunResult(spec, FAILED, reason=outcome.error or "")


def open_run_workers(
    jobs: int,
    cluster: Any,
    in_process: bool,
    tracking_uri: str,
    experiment: str,
    dataset: Dataset | None,
    on_retry: Callable[[str], None] | None = None,
) -> contextlib.AbstractContextManager[Tasks]:
    """Workers (:func:`~vaebench.executor.tasks.open_tasks`) for runs or trials: each started with MLflow
    pointed at ``tracking_uri`` and ``experiment`` and holding ``dataset`` (:func:`worker_dataset`)."""
    return open_tasks(
        jobs=jobs,
        cluster=cluster,
        in_process=in_process,
        initializer=init_worker_state,
        initargs=(None if in_process else tracking_uri, experiment, dataset),
        on_retry=on_retry,
    )
