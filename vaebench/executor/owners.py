"""Which process owns a run, a trial or a claim, and whether that process still runs.

An owner is ``host:pid:start`` (the start time tells a reused pid apart). On the same machine a dead owner
is known at once from /proc; an owner on another machine is unknown here (None), and what it held is left
to a heartbeat or a lease.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def process_owner() -> str:
    """``host:pid:start`` naming this process (its start time tells a reused pid apart)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process named by :func:`process_owner` still runs; None when it ran on another host."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return None
    pid, start = int(parts[1]), parts[2]
    if Path("/proc").is_dir():
        current = _start_time(pid)
        return current is not None and (not start or current == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, from /proc; None if it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None if Path("/proc").is_dir() else ""
    fields = text[text.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]
