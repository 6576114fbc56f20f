"""The local backend: spawned worker processes on this machine (``--jobs N``), bound to their parent.

Spawned, not forked: torch's thread pools and MLflow's clients do not survive a fork. Every worker starts
with :func:`vaebench.executor.stopping.init_worker` (it dies with its parent, SIGKILL included) and runs
each task through :func:`~vaebench.executor.stopping.call_in_worker`. When the parent unwinds (Ctrl-C,
SIGTERM, SIGHUP, an error), :meth:`LocalPool.stop` passes the stop on to the workers, gives them
:data:`~vaebench.executor.stopping.STOP_GRACE_SECONDS` to end their runs KILLED, and kills what is left.

A worker killed from outside (``kill -9``, the OOM killer) breaks a ``ProcessPoolExecutor`` for good: every
task in flight fails with ``BrokenProcessPool`` and the other workers are terminated. :class:`LocalTasks`
starts a fresh pool for the tasks that had not ended, up to :data:`~vaebench.executor.outcomes.RETRIES` times.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from vaebench.executor.outcomes import RETRIES, TaskOutcome, error_sentence
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


class LocalTasks:
    """Tasks handed one at a time to ``jobs`` worker processes, their outcomes taken as each ends.

    A pool broken by a dead worker is replaced once every task it held has failed, and its lost tasks are
    run again in the new one, each up to :data:`~vaebench.executor.outcomes.RETRIES` more times; then it is
    an outcome with the reason. ``on_retry`` hears a sentence each time.
    """

    def __init__(
        self,
        jobs: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.jobs, self.initializer, self.initargs, self.on_retry = jobs, initializer, initargs, on_retry
        self._pool: LocalPool | None = None
        self._calls: dict[Any, tuple[Callable[..., Any], tuple[Any, ...]]] = {}
        self._attempts: dict[Any, int] = {}
        self._pending: dict[Future[Any], Any] = {}
        self._lost: list[Any] = []
        self._ready: deque[TaskOutcome] = deque()

    def __len__(self) -> int:
        """The tasks submitted whose outcome has not been taken yet."""
        return len(self._calls) + len(self._ready)

    def submit(self, key: Any, function: Callable[..., Any], *args: Any) -> None:
        self._calls[key] = (function, args)
        self._attempts[key] = 0
        self._start(key)

    def _start(self, key: Any) -> None:
        if self._pool is None:
            self._pool = LocalPool(self.jobs, self.initializer, self.initargs)
        function, args = self._calls[key]
        try:
            self._pending[self._pool.submit(function, *args)] = key
        except BrokenProcessPool:
            self._lost.append(key)

    def next_done(self) -> TaskOutcome:
        """The next task to end (blocks until one does)."""
        while not self._ready:
            if not self._pending:
                self._replace_pool()
                continue
            finished, _ = wait(self._pending, return_when=FIRST_COMPLETED)
            for future in finished:
                self._collect(future)
        return self._ready.popleft()

    def _collect(self, future: Future[Any]) -> None:
        key = self._pending.pop(future)
        try:
            value = future.result()
        except BrokenProcessPool:
            self._lost.append(key)
            return
        except Exception as error:  # the task raised: its item has no value, the rest go on
            outcome = TaskOutcome(key, error=error_sentence(error))
        else:
            outcome = TaskOutcome(key, value)
        self._calls.pop(key)
        self._ready.append(outcome)

    def _replace_pool(self) -> None:
        """Every task of the broken pool has failed: a fresh pool for those with attempts left."""
        if self._pool is not None:
            self._pool.__exit__(None, None, None)
            self._pool = None
        lost, self._lost = self._lost, []
        again = [key for key in lost if self._attempts[key] < RETRIES]
        if self.on_retry is not None:
            self.on_retry(
                f"A worker process died (killed from outside?) with {len(lost)} task(s) unfinished; "
                + ("running them again in new workers." if again else "giving them up.")
            )
        for key in lost:
            if key not in again:
                self._calls.pop(key)
                self._ready.append(TaskOutcome(key, error=f"its worker processes died {RETRIES + 1} times"))
                continue
            self._attempts[key] += 1
            self._start(key)

    def __enter__(self) -> LocalTasks:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        if self._pool is not None:
            self._pool.__exit__(kind, error, tb)
