"""The Dask backend: each run or trial a task on the workers of an existing Dask scheduler (``--cluster
tcp://HOST:8786``).

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
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from vaebench import tracking
from vaebench.errors import VaebenchError
from vaebench.executor.runs import FAILED, RunJob, RunResult, RunSpec, _worker_dataset, run_one
from vaebench.executor.stopping import StopRequested
from vaebench.executor.tasks import TaskOutcome, error_sentence

if TYPE_CHECKING:
    from vaebench.data import Dataset
    from vaebench.runner import EpochHook

CONNECT_TIMEOUT_SECONDS = 10


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


def worker_threads() -> int:
    """This machine's cores divided between the Dask worker processes on it (at least one each)."""
    from distributed import get_worker

    worker = get_worker()
    workers = worker.client.scheduler_info(n_workers=-1)["workers"].values()
    on_host = sum(1 for w in workers if w.get("host") == worker.ip) or 1
    return max(1, (os.cpu_count() or 1) // on_host)


_initialized: list[str] = []


def _in_worker(
    token: str,
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
    function: Callable[..., Any],
    *args: Any,
) -> Any:
    """A task on a Dask worker: the pool's initializer once per worker process (per :func:`run_on_cluster`
    call), then ``function(*args)``."""
    if initializer is not None and token not in _initialized:
        initializer(*initargs)
        _initialized[:] = [token]
    return function(*args)


def _same(value: Any) -> Any:
    return value


def run_on_cluster(
    client: Any,
    function: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[TaskOutcome]:
    """Submit ``function(*item)`` for every item and yield a :class:`TaskOutcome` as each ends; a task
    whose workers kept dying (Dask's ``KilledWorker``) or that raised is an outcome with its reason, not an
    error. The initializer's arguments (a dataset, say) are sent once and fetched by each worker. Tasks still
    pending when the caller stops (Ctrl-C, an error) are cancelled."""
    import uuid

    from distributed import as_completed

    token = uuid.uuid4().hex
    # The arguments go out as a task's result, not scattered: Dask's memory manager keeps a single copy of
    # data, and scattered data whose worker dies is lost with every task that needs it, whereas a task's
    # result is computed again on another worker.
    shared = client.submit(_same, initargs, pure=False) if initargs else ()
    futures = {
        client.submit(_in_worker, token, initializer, shared, function, *item, pure=False): index
        for index, item in enumerate(items)
    }
    try:
        for future in as_completed(futures, loop=client.loop):
            try:
                value = future.result()
            except Exception as error:  # KilledWorker: the workers died under it; or the task raised
                yield TaskOutcome(futures[future], error=error_sentence(error))
                continue
            yield TaskOutcome(futures[future], value)
    finally:
        client.cancel([*futures, *([shared] if initargs else [])], force=True)


class StopIfCancelled:
    """Made in a Dask task, called at each epoch: raises :class:`StopRequested` once the client has released
    the task (it went away: Ctrl-C, SIGTERM, SIGKILL), so that the run ends KILLED instead of finishing
    for nobody. ``hook`` (an epoch hook) is called after the check."""

    def __init__(self, hook: EpochHook | None = None) -> None:
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
    """The job's epoch-hook factory, each hook wrapped in :class:`StopIfCancelled` (picklable)."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def __call__(self, config: Any, dataset: Dataset) -> StopIfCancelled:
        return StopIfCancelled(self.factory(config, dataset) if self.factory is not None else None)


def run_on_worker(spec: RunSpec, job: RunJob) -> RunResult:
    """One run as a Dask task: its share of the machine's threads, a dead earlier attempt's run ended."""
    from dataclasses import replace

    if spec.config.threads is None:
        spec = replace(spec, config=spec.config.with_settings(threads=worker_threads()))
    data = job.data(spec.config) if job.data is not None else _worker_dataset[0]
    config_hash = spec.config.config_hash(data.content_hash())
    tracking.kill_running_children(job.parent_run_id, "its worker died", config_hash=config_hash)
    job = replace(job, epoch_hook=_CancellableHook(job.epoch_hook))
    try:
        return run_one(spec, job, data)
    except StopRequested as stop:
        return RunResult(spec, FAILED, reason=f"killed: {stop.reason}")
