"""The local backend: spawned worker processes on this machine (``--jobs N``), bound to their parent.

Spawned, not forked: torch's thread pools and MLflow's clients do not survive a fork. Every worker starts
with :func:`vaebench.executor.stopping.init_worker` (it dies with its parent, SIGKILL included) and runs
each task through :func:`~vaebench.executor.stopping.call_in_worker`. When the parent unwinds (Ctrl-C,
SIGTERM, SIGHUP, an error), :meth:`LocalPool.stop` passes the stop on to the workers, gives them
:data:`~vaebench.executor.stopping.STOP_GRACE_SECONDS` to end their runs KILLED, and kills what is left.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from vaebench.executor.stopping import STOP_GRACE_SECONDS, call_in_worker, init_worker


class LocalPool:
    """``jobs`` spawned worker processes, each started with ``initializer(*initargs)``."""

    def __init__(
        self, jobs: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        self.jobs = jobs
        self._pool = ProcessPoolExecutor(
            jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(os.getpid(), initializer, initargs),
        )

    def submit(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        return self._pool.submit(call_in_worker, function, *args)

    def unordered(self, function: Callable[..., Any], items: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        """``function(*item)`` for every item, yielded as each ends (results, or the task's exception)."""
        pending: set[Future[Any]] = {self.submit(function, *item) for item in items}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()

    def worker_pids(self) -> list[int]:
        return [p.pid for p in (self._pool._processes or {}).values() if p.pid is not None]

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop every worker: ``signum`` (their run in flight ends KILLED), then SIGKILL after the grace."""
        processes = list((self._pool._processes or {}).values())
        for process in processes:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(process.pid, signum)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(5)
        with contextlib.suppress(Exception):
            self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        if kind is None:
            self._pool.shutdown(wait=True)
            return
        self.stop(getattr(error, "signum", signal.SIGTERM))
