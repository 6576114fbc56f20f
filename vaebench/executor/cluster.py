"""The Dask backend: each run a task on the workers of an existing Dask scheduler (``--cluster tcp://HOST:8786``).

Workers are ``dask worker tcp://HOST:8786 --nthreads 1 --nworkers N`` on any machine with vaebench
installed; they write to the tracking server the client names (``--tracking-uri http://...``), so they
need no shared file system. One run per worker process at a time (``--nthreads 1``: torch's thread count
and matplotlib are per process); a run uses the machine's cores divided by the worker processes Dask has on
that host.

Faults: a worker that dies mid-run has its task run again on another worker by the scheduler (up to its
``allowed-failures``, 3 by default, then the point is recorded failed); the next attempt first ends the
dead attempt's run KILLED. When the client goes away (Ctrl-C, SIGTERM, SIGKILL) the scheduler releases its
tasks, and a task in training notices at its next epoch and ends its run KILLED.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from vaebench import tracking
from vaebench.errors import VaebenchError
from vaebench.executor.runs import FAILED, RunJob, RunResult, RunSpec, run_one
from vaebench.executor.stopping import StopRequested

if TYPE_CHECKING:
    from vaebench.data import Dataset
    from vaebench.runner import EpochHook

CONNECT_TIMEOUT_SECONDS = 10
_configured: list[tuple[str, str]] = []


def connect(address: str) -> Any:
    """A Dask client of the scheduler at ``address``; one sentence (VaebenchError) if it cannot be reached."""
    try:
        from distributed import Client
    except ImportError:
        raise VaebenchError(
            "--cluster needs Dask distributed: pip install 'vaebench[cluster]' (or 'distributed')."
        ) from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise VaebenchError(f"The Dask scheduler at {address} could not be reached ({reason}).") from None


def _worker_threads() -> int:
    """This machine's cores divided between the Dask worker processes on it (at least one each)."""
    from distributed import get_worker

    worker = get_worker()
    workers = worker.client.scheduler_info(n_workers=-1)["workers"].values()
    on_host = sum(1 for w in workers if w.get("host") == worker.ip) or 1
    return max(1, (os.cpu_count() or 1) // on_host)


class _UnlessCancelled:
    """Wraps a run's epoch hook: when the client has released this task, the run stops (ends KILLED)."""

    def __init__(self, hook: EpochHook | None) -> None:
        from distributed import get_worker

        self.hook = hook
        self.worker = get_worker()
        self.key = self.worker.get_current_task()

    def __call__(self, epoch: int, loss: float, model: Any) -> None:
        task = self.worker.state.tasks.get(self.key)
        if task is None or task.state in ("cancelled", "released", "forgotten"):
            raise StopRequested(15, "its client went away (the task was cancelled)")
        if self.hook is not None:
            self.hook(epoch, loss, model)


class _CancellableHook:
    """The job's epoch-hook factory, each hook wrapped in :class:`_UnlessCancelled` (picklable)."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def __call__(self, config: Any, dataset: Dataset) -> _UnlessCancelled:
        return _UnlessCancelled(self.factory(config, dataset) if self.factory is not None else None)


def run_on_worker(
    spec: RunSpec, job: RunJob, tracking_uri: str, experiment: str, dataset: Dataset | None
) -> RunResult:
    """One run as a Dask task: configure tracking once per process, end a dead earlier attempt's run."""
    from dataclasses import replace

    if (tracking_uri, experiment) not in _configured:
        tracking.configure(tracking_uri, experiment)
        _configured[:] = [(tracking_uri, experiment)]
    if spec.config.threads is None:
        spec = replace(spec, config=replace(spec.config, threads=_worker_threads()))
    data = dataset if dataset is not None else job.data(spec.config)  # type: ignore[misc]
    config_hash = spec.config.config_hash(data.content_hash())
    tracking.kill_running_children(job.parent_run_id, "its worker died", config_hash=config_hash)
    job = replace(job, epoch_hook=_CancellableHook(job.epoch_hook))
    try:
        return run_one(spec, job, data)
    except StopRequested as stop:
        return RunResult(spec, FAILED, reason=f"killed: {stop.reason}")


def execute_on_cluster(
    client: Any,
    specs: Sequence[RunSpec],
    job: RunJob,
    *,
    tracking_uri: str,
    experiment: str,
    dataset: Dataset | None = None,
) -> Iterator[RunResult]:
    """Submit every spec as a task and yield the results as they end; a point whose workers kept dying
    (Dask's ``KilledWorker``) is a failed result, not an error."""
    from distributed import as_completed

    shared = client.scatter(dataset, broadcast=True) if dataset is not None else None
    futures = {
        client.submit(run_on_worker, spec, job, tracking_uri, experiment, shared, pure=False): spec
        for spec in specs
    }
    try:
        for future in as_completed(futures, loop=client.loop):
            try:
                yield future.result()
            except Exception as error:  # the task itself never raises: its workers died under it
                reason = f"{type(error).__name__}: {error}"
                yield RunResult(futures[future], FAILED, reason=reason)
    finally:
        client.cancel(list(futures), force=True)
