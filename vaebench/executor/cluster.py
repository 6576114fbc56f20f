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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vaebench.errors import VaebenchError
from vaebench.executor.outcomes import TaskOutcome, error_sentence
from vaebench.executor.stopping import StopRequested
from vaebench.tracking.uris import redact

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
        raise VaebenchError(
            redact(f"The Dask scheduler at {address} could not be reached ({reason}).")
        ) from None


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


class ClusterTasks:
    """Tasks handed one at a time to the workers of the Dask ``client``, their outcomes taken as each ends.

    A task whose workers kept dying (Dask's ``KilledWorker``) or that raised is an outcome with its reason,
    not an error. The initializer's arguments (a dataset, say) are sent once and fetched by each worker.
    Tasks still pending when the caller stops (Ctrl-C, an error) are cancelled.
    """

    def __init__(
        self, client: Any, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        import uuid

        from distributed import as_completed

        self.client, self.initializer = client, initializer
        self.token = uuid.uuid4().hex
        # The arguments go out as a task's result, not scattered: Dask's memory manager keeps a single copy
        # of data, and scattered data whose worker dies is lost with every task that needs it, whereas a
        # task's result is computed again on another worker.
        self.shared = client.submit(_same, initargs, pure=False) if initargs else None
        self.futures: dict[Any, Any] = {}
        self.done = as_completed([], loop=client.loop)

    def __len__(self) -> int:
        return len(self.futures)

    def submit(self, key: Any, function: Callable[..., Any], *args: Any) -> None:
        shared = self.shared if self.shared is not None else ()
        future = self.client.submit(
            _in_worker, self.token, self.initializer, shared, function, *args, pure=False
        )
        self.futures[future] = key
        self.done.add(future)

    def next_done(self) -> TaskOutcome:
        future = next(self.done)
        key = self.futures.pop(future)
        try:
            return TaskOutcome(key, future.result())
        except Exception as error:  # KilledWorker: the workers died under it; or the task raised
            return TaskOutcome(key, error=error_sentence(error))

    def __enter__(self) -> ClusterTasks:
        return self

    def __exit__(self, *exc: Any) -> None:
        shared = [self.shared] if self.shared is not None else []
        self.client.cancel([*self.futures, *shared], force=True)


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


class CancellableHook:
    """An epoch-hook factory, each hook wrapped in :class:`StopIfCancelled` (picklable)."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def __call__(self, config: Any, dataset: Dataset) -> StopIfCancelled:
        return StopIfCancelled(self.factory(config, dataset) if self.factory is not None else None)


def cluster_slots(client: Any) -> int:
    """How many tasks the Dask ``client``'s workers run at once (their threads; at least one)."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers))
