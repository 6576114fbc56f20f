"""Tasks on a pool of workers, whichever the backend: what suites' runs and tuning's trials share.

:func:`run_tasks` calls ``function(*item)`` for every item in worker processes, each worker started once
with ``initializer(*initargs)``, and yields a :class:`TaskOutcome` per item as each ends: its value, or
one sentence saying why it has none. A worker that dies under a task never becomes an exception for the
caller: on this machine (:func:`vaebench.executor.local.run_in_pool`) the pool is restarted for the tasks
it lost; on a Dask cluster (:func:`vaebench.executor.cluster.run_on_cluster`) the scheduler runs them again
elsewhere. Either way a task lost :data:`RETRIES` times more is given up with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

RETRIES = 3
"""How many times a task whose worker died is run again (Dask's own ``allowed-failures`` default)."""


@dataclass
class TaskOutcome:
    """What became of the item at ``index``: ``value`` if the task returned, else ``error`` (a sentence)."""

    index: int
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def error_sentence(error: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def run_tasks(
    function: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    *,
    jobs: int,
    cluster: Any = None,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    on_retry: Callable[[str], None] | None = None,
) -> Iterator[TaskOutcome]:
    """``function(*item)`` for each item, in ``jobs`` local worker processes or as tasks of the Dask
    ``cluster`` (a client from :func:`vaebench.executor.cluster.connect`), yielded as each ends.

    ``function`` and ``initializer`` are pickled by name (top-level functions). ``on_retry`` hears a
    sentence each time workers died and their tasks are run again.
    """
    if cluster is not None:
        from vaebench.executor.cluster import run_on_cluster

        yield from run_on_cluster(cluster, function, items, initializer, initargs)
        return
    from vaebench.executor.local import run_in_pool

    yield from run_in_pool(function, items, jobs, initializer, initargs, on_retry)
