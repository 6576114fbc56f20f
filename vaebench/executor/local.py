"""The local backend: spawned worker processes on this machine (``--jobs N``), bound to their parent.

Spawned, not forked: torch's thread pools and MLflow's clients do not survive a fork. Every worker starts
with :func:`vaebench.executor.stopping.init_worker` (it dies with its parent, SIGKILL included) and runs
each task through :func:`~vaebench.executor.stopping.call_in_worker`. When the parent unwinds (Ctrl-C,
SIGTERM, SIGHUP, an error), :meth:`LocalPool.stop` passes the stop on to the workers, gives them
:data:`~vaebench.executor.stopping.STOP_GRACE_SECONDS` to end their runs KILLED, and kills what is left.

A worker killed from outside (``kill -9``, the OOM killer) breaks a ``ProcessPoolExecutor`` for good: every
task in flight fails with ``BrokenProcessPool`` and the other workers are terminated. :func:`run_in_pool`
starts a fresh pool for the tasks that had not ended, up to :data:`~vaebench.executor.tasks.RETRIES` times.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from vaebench.executor.stopping import STOP_GRACE_SECONDS, call_in_worker, init_worker
from vaebench.executor.tasks import RETRIES, TaskOutcome, error_sentence


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


def run_in_pool(
    function: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    jobs: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    on_retry: Callable[[str], None] | None = None,
) -> Iterator[TaskOutcome]:
    """``function(*item)`` for each item in ``jobs`` worker processes, as :class:`TaskOutcome` s in the
    order they end; a pool broken by a dead worker is replaced for the tasks it lost."""
    remaining = dict(enumerate(items))
    for attempt in range(RETRIES + 1):
        broken: BrokenProcessPool | None = None
        with LocalPool(min(jobs, len(remaining)), initializer, initargs) as pool:
            pending = {pool.submit(function, *item): index for index, item in remaining.items()}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = pending.pop(future)
                    try:
                        value = future.result()
                    except BrokenProcessPool as error:
                        broken = error
                        continue
                    except Exception as error:  # the task raised: its item has no value, the rest go on
                        remaining.pop(index)
                        yield TaskOutcome(index, error=error_sentence(error))
                        continue
                    remaining.pop(index)
                    yield TaskOutcome(index, value)
        if broken is None or not remaining:
            return
        if on_retry is not None:
            again = attempt < RETRIES
            on_retry(
                f"A worker process died (killed from outside?) with {len(remaining)} task(s) unfinished; "
                + ("running them again in new workers." if again else "giving them up.")
            )
    for index in remaining:
        yield TaskOutcome(index, error=f"its worker processes died {RETRIES + 1} times")
