"""Tasks on workers, whichever the backend: what suites' runs and tuning's trials share.

:func:`open_tasks` gives a set of workers (this process, spawned processes on this machine, or a Dask
cluster) to which tasks are handed one at a time with ``submit(key, function, *args)``; ``next_done()``
returns the :class:`~vaebench.executor.outcomes.TaskOutcome` of the next task to end (its value, or one
sentence saying why it has none), and ``len()`` counts the tasks whose outcome is not taken yet. Every
worker starts once with ``initializer(*initargs)``. A worker that dies under a task never becomes an
exception for the caller: on this machine (:class:`vaebench.executor.local.LocalTasks`) the pool is
restarted for the tasks it lost; on a Dask cluster (:class:`vaebench.executor.cluster.ClusterTasks`) the
scheduler runs them again elsewhere. Either way a task lost :data:`RETRIES` times more is given up with its
reason. :func:`run_tasks` is the same for a list known in advance.

This module dispatches to the backends; they import only :mod:`~vaebench.executor.outcomes` and
:mod:`~vaebench.executor.stopping`, never this module.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from vaebench.executor.cluster import ClusterTasks
from vaebench.executor.local import LocalTasks
from vaebench.executor.outcomes import RETRIES, TaskOutcome, error_sentence

__all__ = ["RETRIES", "InProcessTasks", "TaskOutcome", "Tasks", "error_sentence", "open_tasks", "run_tasks"]


class Tasks(Protocol):
    """Workers that take tasks one at a time and give back their outcomes as each ends."""

    def submit(self, key: Any, function: Callable[..., Any], *args: Any) -> None: ...

    def next_done(self) -> TaskOutcome: ...

    def __len__(self) -> int: ...


class InProcessTasks:
    """The tasks run in this process, one after the other, when their outcome is asked for (one job)."""

    def __init__(self, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
        if initializer is not None:
            initializer(*initargs)
        self._queue: deque[tuple[Any, Callable[..., Any], tuple[Any, ...]]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, key: Any, function: Callable[..., Any], *args: Any) -> None:
        self._queue.append((key, function, args))

    def next_done(self) -> TaskOutcome:
        key, function, args = self._queue.popleft()
        try:
            return TaskOutcome(key, function(*args))
        except Exception as error:  # as in a worker: the task has no value, the others go on
            return TaskOutcome(key, error=error_sentence(error))


@contextmanager
def open_tasks(
    *,
    jobs: int,
    cluster: Any = None,
    in_process: bool = False,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    on_retry: Callable[[str], None] | None = None,
) -> Iterator[Tasks]:
    """Workers for tasks: this process (``in_process``), ``jobs`` local worker processes, or the Dask
    ``cluster`` (a client from :func:`vaebench.executor.cluster.connect`).

    ``function`` and ``initializer`` are pickled by name (top-level functions). ``on_retry`` hears a
    sentence each time local workers died and their tasks are run again. Leaving the block by an error or
    a stop stops the workers (their runs end KILLED) and cancels what is pending.
    """
    if cluster is not None:
        with ClusterTasks(cluster, initializer, initargs) as tasks:
            yield tasks
    elif in_process:
        yield InProcessTasks(initializer, initargs)
    else:
        with LocalTasks(jobs, initializer, initargs, on_retry) as tasks:
            yield tasks


def run_tasks(
    function: Callable[..., Any], items: Sequence[tuple[Any, ...]], *, jobs: int, **workers: Any
) -> Iterator[TaskOutcome]:
    """``function(*item)`` for each item (its index the outcome's key), on the workers of
    :func:`open_tasks` (``workers`` its other arguments), yielded as each ends."""
    with open_tasks(jobs=min(jobs, max(len(items), 1)), **workers) as tasks:
        for index, item in enumerate(items):
            tasks.submit(index, function, *item)
        while len(tasks):
            yield tasks.next_done()
