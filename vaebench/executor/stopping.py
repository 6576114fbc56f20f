"""Stopping cleanly: SIGTERM and SIGHUP handled as Ctrl-C is, and workers that never outlive their parent.

In the main process, :func:`stop_on_signals` turns SIGTERM and SIGHUP (what a batch scheduler, ``timeout``,
systemd or a closed terminal send) into :class:`StopRequested`, a ``KeyboardInterrupt``: every open run is
ended KILLED on the way out with the reason as its ``failure_reason`` tag, and the command exits with
128 + the signal's number.

In a worker process, :func:`init_worker` asks Linux to send SIGTERM when the parent dies
(``prctl(PR_SET_PDEATHSIG)``, which fires whatever killed the parent, SIGKILL included) and starts a
watchdog thread on the parent's pid as the fallback where there is no such call. A stop signal ends the
run in flight KILLED (if the tracking store can still be reached) and then the process; a worker that
cannot finish within :data:`STOP_GRACE_SECONDS` leaves at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from vaebench.executor.heap import freeze_imported_objects

STOP_GRACE_SECONDS = 15.0
"""How long a stopping worker may take to end its run before it leaves anyway (and the parent kills it)."""
_WATCHDOG_INTERVAL = 1.0
_PR_SET_PDEATHSIG = 1


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived: unwind as Ctrl-C does, ending open runs KILLED with :attr:`reason`."""

    def __init__(self, signum: int, reason: str) -> None:
        super().__init__(reason)
        self.signum = signum
        self.reason = reason

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_reason(signum: int) -> str:
    """The sentence a run killed by ``signum`` carries as its ``failure_reason``."""
    reasons = {
        signal.SIGINT: "interrupted (Ctrl-C)",
        signal.SIGTERM: "stopped by SIGTERM",
        signal.SIGHUP: "stopped by SIGHUP",
    }
    return reasons.get(signum, f"stopped by signal {signum}")


def stop_reason(error: BaseException) -> str:
    """Why a run unwound by a ``KeyboardInterrupt`` ends KILLED."""
    return error.reason if isinstance(error, StopRequested) else signal_reason(signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM and SIGHUP raise :class:`StopRequested` once;
    a repeat of the signal during the clean-up is ignored so that the clean-up finishes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised: list[int] = []

    def handle(signum: int, frame: Any) -> None:
        if raised:
            return
        raised.append(signum)
        raise StopRequested(signum, signal_reason(signum))

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _WorkerState:
    """What a worker process knows about its own life: its parent, whether a run is in flight, a stop."""

    parent_pid: int | None = None
    busy = False
    stop: StopRequested | None = None


_worker = _WorkerState()


def set_parent_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def parent_alive() -> bool:
    return _worker.parent_pid is None or os.getppid() == _worker.parent_pid


def _parent_dying(seconds: float = 1.0) -> bool:
    """Whether the parent is gone or going. Linux sends the parent-death signal when the parent's forking
    thread exits, which under SIGKILL can be a moment before the whole process is gone and this worker is
    handed to another parent: so a SIGTERM is given that moment before it counts as a plain SIGTERM."""
    deadline = time.monotonic() + seconds
    while parent_alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _handle_in_worker(signum: int, frame: Any) -> None:
    if _worker.stop is not None:
        return  # already stopping: let the run be closed
    dying = _parent_dying() if signum == signal.SIGTERM else not parent_alive()
    reason = "its parent process died" if dying else signal_reason(signum)
    _worker.stop = StopRequested(signum, reason)
    if not _worker.busy:
        os._exit(_worker.stop.exit_code)
    raise _worker.stop


def _watchdog() -> None:
    """Fallback for systems without a parent-death signal, and the deadline of a stop that hangs."""
    while True:
        time.sleep(_WATCHDOG_INTERVAL)
        if _worker.stop is None and not parent_alive():
            os.kill(os.getpid(), signal.SIGTERM)
        if _worker.stop is not None:
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while time.monotonic() < deadline:
                time.sleep(0.2)
            os._exit(_worker.stop.exit_code)


def init_worker(parent_pid: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    """The first thing a worker process runs: bind its life to ``parent_pid``, then ``initializer``."""
    _worker.parent_pid = parent_pid
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the request was made
        os._exit(128 + signal.SIGTERM)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _handle_in_worker)
    threading.Thread(target=_watchdog, name="vaebench-parent-watchdog", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)
    freeze_imported_objects()  # the worker's modules are imported: out of the collector's way


def call_in_worker(function: Callable[..., Any], *args: Any) -> Any:
    """Run one task in a worker; a stop during it unwinds the task (its run ends KILLED), then the worker
    leaves instead of taking another task."""
    if _worker.stop is not None:
        os._exit(_worker.stop.exit_code)
    _worker.busy = True
    try:
        return function(*args)
    finally:
        _worker.busy = False
        if _worker.stop is not None:
            os._exit(_worker.stop.exit_code)
